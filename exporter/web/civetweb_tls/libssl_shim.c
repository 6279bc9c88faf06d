/* The "libssl.so" civetweb loads. Debian's civetweb (1.15 in Debian 12,
 * 1.16 in Debian 13) loads OpenSSL at run time, with dlopen("libssl.so")
 * and dlopen("libcrypto.so"), and looks up its functions with dlsym. Two
 * problems follow, and this library solves both:
 *   - those names come only with libssl-dev: a machine with the runtime
 *     libraries alone (the Debian package, the container image) has no
 *     "libssl.so";
 *   - civetweb calls SSL_get_peer_certificate after every TLS handshake,
 *     and OpenSSL 3 has no such function any more (it is a macro for
 *     SSL_get1_peer_certificate), so the call jumps to address 0.
 * This library links the real libssl.so.3 (dlsym searches it through this
 * one) and adds the missing function. The exporter finds it first through
 * its DT_RPATH, which glibc also searches for a dlopen made by a library
 * without a DT_RUNPATH, such as libcivetweb. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

/* OpenSSL 1.1's SSL_get_peer_certificate also returned a new reference,
 * which civetweb frees. */
X509 *SSL_get_peer_certificate(const SSL *ssl) { return SSL_get1_peer_certificate(ssl); }
