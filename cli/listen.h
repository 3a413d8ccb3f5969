/* listen.h - the address the daemon's HTTP endpoint listens on, as the
 * config's `http` and --http give it. */
#ifndef CHIME_CLI_LISTEN_H
#define CHIME_CLI_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

/* The longest address text: "[" 45 characters of IPv6 "]:" 5 digits. */
#define LISTEN_TEXT_MAX 56

struct listen_addr {
  struct sockaddr_storage ss;   /* what bind(2) takes */
  socklen_t len;
  char text[LISTEN_TEXT_MAX];   /* as messages name it: 127.0.0.1:9746, [::1]:9746 */
};

/* Reads an address to listen on: PORT (on 127.0.0.1), IPV4:PORT,
 * localhost:PORT or [IPV6]:PORT; PORT is 0 to 65535 (0: any free port).
 * Only numeric addresses (and localhost): nothing is looked up, so that
 * the address never depends on a resolver, and an address other than
 * loopback (0.0.0.0, [::], an interface's) is taken only when written.
 * Returns 0 and *out, or -EINVAL with why in `why` (out untouched). */
int listen_addr_parse(const char *text, struct listen_addr *out, char *why, size_t size);

#endif
