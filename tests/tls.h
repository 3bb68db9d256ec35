/* tls.h - TLS for process-level tests: a self-signed certificate made with the OpenSSL API,
 * and a one-shot HTTPS GET that verifies the server against it. */
#ifndef HERALD_TEST_TLS_H
#define HERALD_TEST_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Write <dir>/<name>.pem (a self-signed X.509 certificate for 127.0.0.1 and localhost, valid
 * one day, EC P-256) and <dir>/<name>.key (its private key, mode 0600); their paths go to
 * cert and key. Returns 0 or -1. */
int tls_make_cert(const char *dir, const char *name, char *cert, size_t cert_len, char *key,
                  size_t key_len);

/* GET path from host:port over TLS, verifying the server's certificate chain against cafile
 * and its name against host. Returns the HTTP status (body, NUL-terminated, in body up to
 * cap) or -1 when the connection or the TLS handshake (verification included) failed. */
int tls_http_get(const char *host, uint16_t port, const char *cafile, const char *path, char *body,
                 size_t cap);

#endif
