# railguard-rewrap: the background re-encryption after a key rotation.
# Rewrap turns old-version ciphertext into latest-version ciphertext inside Vault; this policy
# grants no encrypt or decrypt, so its holder never sees plaintext.
path "transit/rewrap/credentials" {
  capabilities = ["update"]
}
path "transit/rewrap/auth" {
  capabilities = ["update"]
}
# Read latest_version to know which records still need a rewrap.
path "transit/keys/credentials" {
  capabilities = ["read"]
}
path "transit/keys/auth" {
  capabilities = ["read"]
}
