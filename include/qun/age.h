/* SPDX-License-Identifier: MIT */
/* The age v1 file format (C2SP age, https://age-encryption.org/v1) for X25519
 * recipients, on libsodium: keys in Bech32 ("age1..." recipients and
 * "AGE-SECRET-KEY-1..." identities), a streaming encryptor that holds one 64 KiB
 * chunk, and a streaming decryptor that verifies the header MAC before releasing any
 * plaintext and authenticates every chunk.  Also the two primitives libsodium 1.0.18
 * lacks, HKDF-SHA256 (RFC 5869) and Bech32 (BIP-173).  See docs/archive-format.md. */
#ifndef QUN_AGE_H
#define QUN_AGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qun/errors.h"

/* Plaintext bytes per STREAM chunk; each chunk carries a 16-byte tag. */
#define QUN_AGE_CHUNK 65536
/* Lengths of the key strings, without the terminating NUL. */
#define QUN_AGE_RECIPIENT_LEN 62
#define QUN_AGE_IDENTITY_LEN 74
/* Most recipients one file may be encrypted to, and identities one decryption tries. */
#define QUN_AGE_MAX_KEYS 64
/* The scrypt work factor (log2 N) of the passphrase files qun writes: age's own
 * default, about a second and 256 MiB, which Debian's age (at most 22) opens. */
#define QUN_AGE_SCRYPT_LOG_N 18
/* The highest work factor qun writes or agrees to open, as age. */
#define QUN_AGE_SCRYPT_MAX_LOG_N 22
/* Room for an scrypt stanza's text with its terminating NUL. */
#define QUN_AGE_SCRYPT_STANZA_MAX 128

/* ---- primitives ---- */

/* HKDF-SHA256 (RFC 5869): extract with salt (NULL or empty: 32 zero bytes) and ikm,
 * expand with info into out[out_len], out_len <= 255 * 32.  Returns QUN_OK or
 * QUN_BAD_REQUEST when out_len is too large. */
qun_rc qun_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                       const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* Bech32 (BIP-173, not Bech32m) encoding of the bytes data[len] under the
 * human-readable part hrp, in lower case, or upper case when upper.  Writes at most
 * size bytes including the NUL.  No length limit is applied (age keys are short).
 * Returns QUN_OK, or QUN_BAD_REQUEST when hrp is invalid or out is too small. */
qun_rc qun_bech32_encode(const char *hrp, const uint8_t *data, size_t len, bool upper, char *out,
                         size_t size);

/* Decode the Bech32 string s: the human-readable part, lower-cased, goes to hrp
 * (hrp_size bytes with the NUL) and the bytes to data (at most data_size; *data_len
 * set).  Rejects mixed case, characters outside 33..126, a missing separator, an
 * empty hrp, a bad checksum, non-zero padding and, when limit90, strings longer than
 * 90 characters as BIP-173 requires.  Returns QUN_OK or QUN_FIELD_INVALID. */
qun_rc qun_bech32_decode(const char *s, bool limit90, char *hrp, size_t hrp_size, uint8_t *data,
                         size_t data_size, size_t *data_len);

/* ---- keys ---- */

/* A fresh X25519 key pair as strings: identity "AGE-SECRET-KEY-1..." and recipient
 * "age1...".  Both buffers are the caller's.  Returns QUN_OK. */
qun_rc qun_age_keygen(char identity[QUN_AGE_IDENTITY_LEN + 1], char recipient[QUN_AGE_RECIPIENT_LEN + 1]);

/* Parse an "age1..." recipient into its X25519 public key.  QUN_AGE_KEY_INVALID if
 * it is not one (detail in err). */
qun_rc qun_age_recipient_parse(const char *s, uint8_t pk[32], qun_err_t *err);

/* Parse an "AGE-SECRET-KEY-1..." identity into its X25519 secret key. */
qun_rc qun_age_identity_parse(const char *s, uint8_t sk[32], qun_err_t *err);

/* The recipient string of an identity string. */
qun_rc qun_age_identity_recipient(const char *identity, char recipient[QUN_AGE_RECIPIENT_LEN + 1],
                                  qun_err_t *err);

/* Read an identity file as age-keygen writes it: blank lines and lines starting with
 * '#' are skipped; every other line must be an identity.  Fills sks[max][32], sets
 * *n.  QUN_AGE_KEY_INVALID if a line is not an identity or there is none. */
qun_rc qun_age_identities_load(FILE *f, uint8_t (*sks)[32], size_t max, size_t *n, qun_err_t *err);

/* ---- streaming ---- */

/* Where an encryptor writes: return 0 on success, non-zero to fail the encryption. */
typedef int (*qun_age_write_fn)(void *arg, const void *buf, size_t len);
/* Where a decryptor reads: fill buf with up to len bytes, set *got (0 only at end of
 * input); return 0, or non-zero on a read error. */
typedef int (*qun_age_read_fn)(void *arg, void *buf, size_t len, size_t *got);

typedef struct qun_age_enc qun_age_enc_t;
typedef struct qun_age_dec qun_age_dec_t;

/* Start an age file for the X25519 public keys pks[n] (1 <= n <= QUN_AGE_MAX_KEYS):
 * draws a file key and writes the header and the payload nonce through write.  On
 * success *out is owned by the caller (qun_age_enc_free).  Memory stays at one chunk
 * whatever is written later. */
qun_rc qun_age_enc_new(const uint8_t (*pks)[32], size_t n, qun_age_write_fn write, void *arg,
                       qun_age_enc_t **out, qun_err_t *err);
/* Start an age file for a passphrase: one scrypt stanza of work factor 2^log_n
 * (QUN_AGE_SCRYPT_LOG_N normally) over a fresh file key; otherwise as qun_age_enc_new.
 * QUN_NOMEM when scrypt cannot have its memory. */
qun_rc qun_age_enc_new_passphrase(const char *pass, size_t pass_len, int log_n, qun_age_write_fn write,
                                  void *arg, qun_age_enc_t **out, qun_err_t *err);
/* The scrypt stanza wrapping file_key for pass (C2SP age, "The scrypt recipient
 * type"): "-> scrypt <salt> <log_n>\n<body>\n" with a fresh salt, into out[size]. */
qun_rc qun_age_scrypt_stanza(const char *pass, size_t pass_len, int log_n, const uint8_t file_key[16],
                             char *out, size_t size, qun_err_t *err);
/* Start an age file whose file key and recipient stanza text (one or more stanzas,
 * each ending in a newline) were made beforehand, e.g. by qun_age_scrypt_stanza at
 * the time of a request; the header MAC is computed here. */
qun_rc qun_age_enc_new_keyed(const uint8_t file_key[16], const char *stanza, qun_age_write_fn write,
                             void *arg, qun_age_enc_t **out, qun_err_t *err);
/* Encrypt len more bytes of plaintext. */
qun_rc qun_age_enc_write(qun_age_enc_t *e, const void *buf, size_t len, qun_err_t *err);
/* Write the last chunk; the file is complete after QUN_OK.  No write after this. */
qun_rc qun_age_enc_finish(qun_age_enc_t *e, qun_err_t *err);
/* Wipe and free; accepts NULL. */
void qun_age_enc_free(qun_age_enc_t *e);

/* Open an age file read through read with the X25519 secret keys sks[n]: parses the
 * header, unwraps the file key, verifies the header MAC and reads the payload nonce
 * before returning, so no plaintext is ever released from a forged header.  Errors:
 * QUN_AGE_HEADER_INVALID (malformed header, bad X25519 stanza, missing nonce),
 * QUN_AGE_NO_MATCH (no stanza opens with these keys), QUN_AGE_HMAC_INVALID,
 * QUN_AGE_IO.  On success *out is owned by the caller (qun_age_dec_free). */
qun_rc qun_age_dec_new(const uint8_t (*sks)[32], size_t n, qun_age_read_fn read, void *arg,
                       qun_age_dec_t **out, qun_err_t *err);
/* Open a passphrase file: its header must hold one scrypt stanza, alone, of work
 * factor at most max_log_n (QUN_AGE_HEADER_INVALID otherwise); a wrong passphrase is
 * QUN_AGE_NO_MATCH.  Otherwise as qun_age_dec_new. */
qun_rc qun_age_dec_new_passphrase(const char *pass, size_t pass_len, int max_log_n, qun_age_read_fn read,
                                  void *arg, qun_age_dec_t **out, qun_err_t *err);
/* Decrypt up to len bytes of plaintext into buf; *got is 0 only at the authenticated
 * end of the file.  Each chunk is verified before any of its bytes are returned.
 * QUN_AGE_PAYLOAD_INVALID on a bad tag, a truncated stream, trailing data, a second
 * final chunk or an empty final chunk after data; QUN_AGE_IO on a read error. */
qun_rc qun_age_dec_read(qun_age_dec_t *d, void *buf, size_t len, size_t *got, qun_err_t *err);
/* Wipe and free; accepts NULL. */
void qun_age_dec_free(qun_age_dec_t *d);

/* Convenience: encrypt all of in to out for pks[n]. */
qun_rc qun_age_encrypt_file(FILE *in, FILE *out, const uint8_t (*pks)[32], size_t n, qun_err_t *err);
/* Convenience: decrypt all of in to out with sks[n]; plaintext reaches out chunk by
 * verified chunk, so on a payload error out holds the verified prefix. */
qun_rc qun_age_decrypt_file(FILE *in, FILE *out, const uint8_t (*sks)[32], size_t n, qun_err_t *err);

#endif
