"""Django + DRF + djangorestframework-api-key: the benchmark's request behind an API key."""
