# railguard-auth: the auth service at run time.
# Encrypts TOTP secrets and JWT signing private keys with its own transit key; nothing else.
path "transit/encrypt/auth" {
  capabilities = ["update"]
}
path "transit/decrypt/auth" {
  capabilities = ["update"]
}
path "transit/keys/auth" {
  capabilities = ["read"]
}
