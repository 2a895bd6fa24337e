// Package encryption keeps chosen values of the replicated store encrypted
// at rest: the API server seals every Secret before it is proposed, so the
// Raft log, the state database and snapshots hold only ciphertext, and
// opens it again when it is served.
//
// A sealed value is an envelope naming the key that sealed it:
//
//	orch:enc:aesgcm:v1:<keyid>:<12-byte nonce><AES-256-GCM ciphertext and tag>
//
// The store key of the value is the authenticated data, so a ciphertext
// copied under another key does not open. Values without the header are
// plaintext written before encryption was on; they are read as they are and
// sealed on their next write or the next key rotation.
//
// The data keys live in the store too, under KeysKey, each sealed with a
// key-encryption key derived from the cluster token (KEK). Every server
// holds the token, so every server opens them; the store's files alone do
// not. Several keys coexist during a rotation: one is the write key, the
// others only open older values until Rotate has re-sealed every value and
// retires them.
//
// Every sealed write carries a compare on the keyring's revision, so a
// server whose cached keyring is stale fails the write, reloads and seals
// again with the current write key. That is what lets Rotate retire an old
// key once its single pass is over: no value can be written under it after
// the pass began.
package encryption
