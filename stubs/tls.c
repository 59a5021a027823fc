/* tls.c: OpenSSL context setup shared by servers and channels (TLS 1.2+,
 * ALPN h2 only, as gRPC requires). The per-connection TLS state lives in
 * conn.c. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

static const unsigned char alpn_h2[] = {2, 'h', '2'};

/* Writes "what: <OpenSSL's first queued reason>" into err (errlen bytes)
 * and clears the queue, so the next failure starts from an empty one. */
static void tls_error(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  char reason[256] = "";
  if (e)
    ERR_error_string_n(e, reason, sizeof(reason));
  ERR_clear_error();
  if (errlen)
    snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", reason);
}

/* ALPN: accept the connection only when the client offers h2. */
static int select_alpn(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, alpn_h2, sizeof(alpn_h2), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method) {
  SSL_CTX *ctx = SSL_CTX_new(method);
  if (!ctx)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* RFC 7540 9.2.2: TLS 1.2 cipher suites must be AEAD with ephemeral keys. */
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

static int load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file,
                     char *err, size_t errlen) {
  char what[512];
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    snprintf(what, sizeof(what), "cannot load certificate %s", cert_file);
    tls_error(err, errlen, what);
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    snprintf(what, sizeof(what), "cannot load private key %s", key_file);
    tls_error(err, errlen, what);
    return -1;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(what, sizeof(what), "key %s does not match certificate %s",
             key_file, cert_file);
    tls_error(err, errlen, what);
    return -1;
  }
  return 0;
}

static int set_session_context(SSL_CTX *ctx, const char *cert_file,
                               const char *ca_file, int require_client_cert,
                               char *err, size_t errlen) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX *mdc = EVP_MD_CTX_new();
  int ok = mdc && EVP_DigestInit_ex(mdc, EVP_sha256(), NULL) == 1 &&
           EVP_DigestUpdate(mdc, "baton\0", 6) == 1 &&
           EVP_DigestUpdate(mdc, cert_file, strlen(cert_file) + 1) == 1 &&
           (!ca_file || EVP_DigestUpdate(mdc, ca_file, strlen(ca_file)) == 1) &&
           EVP_DigestUpdate(mdc, require_client_cert ? "R" : "-", 1) == 1 &&
           EVP_DigestFinal_ex(mdc, md, &md_len) == 1;
  EVP_MD_CTX_free(mdc);
  if (md_len > SSL_MAX_SID_CTX_LENGTH)
    md_len = SSL_MAX_SID_CTX_LENGTH;
  if (!ok || SSL_CTX_set_session_id_context(ctx, md, md_len) != 1) {
    tls_error(err, errlen, "cannot set the TLS session id context");
    return -1;
  }
  return 0;
}

SSL_CTX *bt__tls_server_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, int require_client_cert,
                            char *err, size_t errlen) {
  char what[512];
  SSL_CTX *ctx = new_ctx(TLS_server_method());
  if (!ctx) {
    tls_error(err, errlen, "cannot create a TLS context");
    return NULL;
  }
  if (!cert_file || !key_file) {
    snprintf(err, errlen, "a TLS listener needs a certificate and a key");
    goto fail;
  }
  if (load_pair(ctx, cert_file, key_file, err, errlen) != 0)
    goto fail;
  if (ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
      snprintf(what, sizeof(what), "cannot load CA %s", ca_file);
      tls_error(err, errlen, what);
      goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names)
      SSL_CTX_set_client_CA_list(ctx, names);
  }
  if (require_client_cert) {
    if (!ca_file) {
      snprintf(err, errlen, "require_client_cert needs a CA file");
      goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
  } else if (ca_file) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  /* A server that verifies clients must name its session context, or
   * OpenSSL refuses every resumed session with an internal error alert; a
   * context of its own per certificate, CA and policy keeps a session of one
   * listener from resuming on another with other checks. */
  if (set_session_context(ctx, cert_file, ca_file, require_client_cert, err,
                          errlen) != 0)
    goto fail;
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

SSL_CTX *bt__tls_client_ctx(const char *ca_file, const char *cert_file,
                            const char *key_file, char *err, size_t errlen) {
  char what[512];
  SSL_CTX *ctx = new_ctx(TLS_client_method());
  if (!ctx) {
    tls_error(err, errlen, "cannot create a TLS context");
    return NULL;
  }
  if (ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
      snprintf(what, sizeof(what), "cannot load CA %s", ca_file);
      tls_error(err, errlen, what);
      goto fail;
    }
  } else {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  if (cert_file || key_file) {
    if (!cert_file || !key_file) {
      snprintf(err, errlen, "a client certificate needs both cert and key");
      goto fail;
    }
    if (load_pair(ctx, cert_file, key_file, err, errlen) != 0)
      goto fail;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2));
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}
