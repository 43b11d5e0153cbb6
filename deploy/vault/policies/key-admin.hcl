# railguard-key-admin: operators and the bootstrap job only, never a service.
# Create, rotate and configure the Railguard transit keys. No encrypt/decrypt (admins do not read
# data), no export, no delete (a deleted key destroys every ciphertext it protects).
path "transit/keys/credentials" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/credentials/rotate" {
  capabilities = ["update"]
}
path "transit/keys/credentials/config" {
  capabilities = ["update"]
}
path "transit/keys/credentials/trim" {
  capabilities = ["update"]
}
path "transit/keys/auth" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/auth/rotate" {
  capabilities = ["update"]
}
path "transit/keys/auth/config" {
  capabilities = ["update"]
}
path "transit/keys/auth/trim" {
  capabilities = ["update"]
}
path "transit/keys/workspaces" {
  capabilities = ["create", "read", "update"]
}
path "transit/keys/workspaces/rotate" {
  capabilities = ["update"]
}
path "transit/keys/workspaces/config" {
  capabilities = ["update"]
}
path "transit/keys/workspaces/trim" {
  capabilities = ["update"]
}
# Turn off upsert for the whole mount (disable_upsert=true).
path "transit/config/keys" {
  capabilities = ["read", "update"]
}
