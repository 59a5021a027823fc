/* tls.h (private): OpenSSL contexts for servers and channels. */
#ifndef BT_TLS_H
#define BT_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* A server context: TLS 1.2+, ALPN must select "h2", certificate chain and
 * key from PEM files, optional client verification against ca_file. Returns
 * NULL with a sentence in err (errlen bytes: which file, and OpenSSL's
 * reason). Free with SSL_CTX_free. */
SSL_CTX *bt__tls_server_ctx(const char *cert_file, const char *key_file,
                            const char *ca_file, int require_client_cert,
                            char *err, size_t errlen);
/* A client context: TLS 1.2+, ALPN "h2", peer verification against ca_file
 * (NULL: the system default paths), optional client certificate. Errors as
 * bt__tls_server_ctx. */
SSL_CTX *bt__tls_client_ctx(const char *ca_file, const char *cert_file,
                            const char *key_file, char *err, size_t errlen);

#endif
