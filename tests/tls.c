/* tls.c - a self-signed certificate and an HTTPS GET for tests (OpenSSL 3 API). */
#include "tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static int tls_add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e) return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static int tls_write_pem(const char *path, EVP_PKEY *pkey, X509 *x)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    int ok = pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
    return fclose(f) == 0 && ok ? 0 : -1;
}

int tls_make_cert(const char *dir, const char *name, char *cert, size_t cert_len, char *key,
                  size_t key_len)
{
    int rc = -1;
    X509 *x = NULL;
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    if (!pkey || !(x = X509_new())) goto out;
    snprintf(cert, cert_len, "%s/%s.pem", dir, name);
    snprintf(key, key_len, "%s/%s.key", dir, name);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pkey);
    X509_NAME *subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
                               -1, 0);
    X509_set_issuer_name(x, subject);
    /* its own CA: a client that trusts this file verifies the chain, then the name */
    if (tls_add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        tls_add_ext(x, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1") < 0)
        goto out;
    if (!X509_sign(x, pkey, EVP_sha256())) goto out;
    if (tls_write_pem(key, pkey, NULL) < 0 || tls_write_pem(cert, NULL, x) < 0) goto out;
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

int tls_http_get(const char *host, uint16_t port, const char *cafile, const char *path, char *body,
                 size_t cap)
{
    static char resp[65536];
    int status = -1, fd = -1;
    SSL *ssl = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (!ctx || inet_pton(AF_INET, host, &sa.sin_addr) != 1) goto out;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) goto out;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd) || !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host))
        goto out;
    if (SSL_connect(ssl) != 1 || SSL_get_verify_result(ssl) != X509_V_OK) goto out;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (SSL_write(ssl, req, n) != n) goto out;
    size_t got = 0;
    for (;;) {
        int r = SSL_read(ssl, resp + got, (int)(sizeof resp - 1 - got));
        if (r <= 0) break;
        got += (size_t)r;
        if (got == sizeof resp - 1) break;
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/%*s %d", &status) != 1) status = -1;
    const char *b = strstr(resp, "\r\n\r\n");
    if (body && cap) snprintf(body, cap, "%s", b ? b + 4 : "");
out:
    if (ssl) SSL_free(ssl);
    if (fd >= 0) close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return status;
}
