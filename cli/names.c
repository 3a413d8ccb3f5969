/* names.c - a map from job names (names.h): FNV-1a into chains, the
 * table doubled when it holds as many entries as slots, so a lookup costs
 * a hash and a comparison or two, with 10,000 jobs as with ten. */
#include "names.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct name_entry {
  struct name_entry *next; /* in its chain */
  void *value;
  char key[];
};

static uint64_t hash(const char *s) {
  uint64_t h = 14695981039346656037ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static struct name_entry **chain(const struct names *m, const char *key) { return &m->slots[hash(key) & (m->cap - 1)]; }

static struct name_entry *find(const struct names *m, const char *key) {
  if (!m->cap) return NULL;
  for (struct name_entry *e = *chain(m, key); e; e = e->next)
    if (strcmp(e->key, key) == 0) return e;
  return NULL;
}

void *names_get(const struct names *m, const char *key) {
  const struct name_entry *e = find(m, key);
  return e ? e->value : NULL;
}

/* Doubles the table (from 64 slots): 0, or -ENOMEM with the map as it was. */
static int grow(struct names *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  struct name_entry **slots = calloc(cap, sizeof *slots);
  if (!slots) return -ENOMEM;
  struct names bigger = {slots, cap, m->count};
  for (size_t i = 0; i < m->cap; i++)
    for (struct name_entry *e = m->slots[i], *next; e; e = next) {
      next = e->next;
      struct name_entry **c = chain(&bigger, e->key);
      e->next = *c;
      *c = e;
    }
  free(m->slots);
  *m = bigger;
  return 0;
}

int names_put(struct names *m, const char *key, void *value) {
  struct name_entry *e = find(m, key);
  if (e) {
    e->value = value;
    return 0;
  }
  if (m->count >= m->cap && grow(m) != 0) return -ENOMEM;
  size_t len = strlen(key) + 1;
  e = malloc(sizeof *e + len);
  if (!e) return -ENOMEM;
  memcpy(e->key, key, len);
  e->value = value;
  struct name_entry **c = chain(m, key);
  e->next = *c;
  *c = e;
  m->count++;
  return 0;
}

void *names_del(struct names *m, const char *key) {
  if (!m->cap) return NULL;
  for (struct name_entry **p = chain(m, key); *p; p = &(*p)->next) {
    struct name_entry *e = *p;
    if (strcmp(e->key, key) != 0) continue;
    void *value = e->value;
    *p = e->next;
    free(e);
    m->count--;
    return value;
  }
  return NULL;
}

void names_each(const struct names *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx) {
  for (size_t i = 0; i < m->cap; i++)
    for (struct name_entry *e = m->slots[i]; e; e = e->next)
      fn(ctx, e->key, e->value);
}

void names_clear(struct names *m, void (*free_value)(void *value)) {
  for (size_t i = 0; i < m->cap; i++)
    for (struct name_entry *e = m->slots[i], *next; e; e = next) {
      next = e->next;
      if (free_value) free_value(e->value);
      free(e);
    }
  free(m->slots);
  memset(m, 0, sizeof *m);
}
