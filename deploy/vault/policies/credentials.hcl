# railguard-credentials: the credentials service at run time.
# Encrypt/decrypt with its own transit key only. `update` without `create` means encrypt can never
# create (upsert) a missing key; no rotate/config/trim/export/delete: it cannot administer the key.
path "transit/encrypt/credentials" {
  capabilities = ["update"]
}
path "transit/decrypt/credentials" {
  capabilities = ["update"]
}
# Start-up self-check: the key must exist, be derived and of the expected type (fail closed).
path "transit/keys/credentials" {
  capabilities = ["read"]
}
