# railguard-workspaces: the workspaces service at run time.
# Seals invitation mails while they wait in the outbox with its own transit key; nothing else.
path "transit/encrypt/workspaces" {
  capabilities = ["update"]
}
path "transit/decrypt/workspaces" {
  capabilities = ["update"]
}
path "transit/keys/workspaces" {
  capabilities = ["read"]
}
