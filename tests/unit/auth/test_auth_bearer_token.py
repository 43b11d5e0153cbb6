"""The prefixed bearer tokens: each kind recognises only its own tokens."""

from auth_service.domain.bearer_token import BearerTokenFormat


def test_a_token_is_well_formed_only_for_its_own_kind_and_hashes_to_sha256() -> None:
    refresh, challenge = BearerTokenFormat("rgr_"), BearerTokenFormat("rgm_")
    token = refresh.new()
    assert refresh.well_formed(token)
    assert not challenge.well_formed(token)
    assert not refresh.well_formed(token[:-1])
    assert not refresh.well_formed(token + "x")
    assert refresh.hash(token) == challenge.hash(token)
    assert len(refresh.hash(token)) == 64
    assert refresh.new() != token
