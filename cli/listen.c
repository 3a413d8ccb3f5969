/* listen.c - the HTTP endpoint's address (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The port: 1 to 5 digits, 0 to 65535, nothing else. */
static int parse_port(const char *s, unsigned *port) {
  size_t n = strspn(s, "0123456789");
  if (n == 0 || n > 5 || s[n]) return -EINVAL;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++) v = v * 10 + (unsigned long)(s[i] - '0');
  if (v > 65535) return -EINVAL;
  *port = (unsigned)v;
  return 0;
}

int listen_addr_parse(const char *text, struct listen_addr *out, char *why, size_t size) {
  static const char form[] = "PORT, ADDRESS:PORT or [IPV6]:PORT (127.0.0.1:9746; 0.0.0.0:9746 for every interface)";
  char host[48]; /* "[" an IPv6 address (45 at most) "]" */
  const char *port_text;
  struct listen_addr a;
  memset(&a, 0, sizeof a);
  unsigned port;
  if (!text || !*text) return snprintf(why, size, "is empty: give %s", form), -EINVAL;
  const char *colon = strrchr(text, ':');
  if (!colon) { /* a port alone: loopback */
    strcpy(host, "127.0.0.1");
    port_text = text;
  } else {
    size_t n = (size_t)(colon - text);
    if (n >= sizeof host) return snprintf(why, size, "\"%s\": the address is too long", text), -EINVAL;
    memcpy(host, text, n);
    host[n] = '\0';
    port_text = colon + 1;
    if (n == 0) return snprintf(why, size, "\"%s\": no address before the port: give %s", text, form), -EINVAL;
  }
  if (parse_port(port_text, &port))
    return snprintf(why, size, "\"%s\": the port is not a number from 0 to 65535", text), -EINVAL;
  size_t hl = strlen(host);
  if (host[0] == '[') {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
    if (hl < 3 || host[hl - 1] != ']')
      return snprintf(why, size, "\"%s\": an IPv6 address is written in brackets: [::1]:9746", text), -EINVAL;
    host[hl - 1] = '\0';
    if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
      return snprintf(why, size, "\"%s\": \"%s\" is not an IPv6 address", text, host + 1), -EINVAL;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((unsigned short)port);
    a.len = sizeof *s6;
    snprintf(a.text, sizeof a.text, "[%s]:%u", host + 1, port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (strchr(host, ':'))
      return snprintf(why, size, "\"%s\": an IPv6 address is written in brackets: [::1]:9746", text), -EINVAL;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
      return snprintf(why, size, "\"%s\": \"%s\" is not an IPv4 address (names other than localhost are not looked up)",
                      text, host),
             -EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((unsigned short)port);
    a.len = sizeof *s4;
    snprintf(a.text, sizeof a.text, "%s:%u", host, port);
  }
  *out = a;
  return 0;
}
