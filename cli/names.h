/* names.h - a map from job names to what the daemon keeps of them beside
 * their job (a pause, a hook's state), which must outlive a job's version:
 * a reload replaces a changed job's struct, never its name's entry. */
#ifndef CHIME_CLI_NAMES_H
#define CHIME_CLI_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* A chained hash table; the zero value is an empty map.  Keys are copied;
 * values are the caller's. */
struct names {
  struct name_entry **slots;
  size_t cap;   /* slots, a power of two (0: none yet) */
  size_t count; /* entries */
};

/* The value of `key`, or NULL. */
void *names_get(const struct names *m, const char *key);
/* Sets the value of `key` (a new entry, or the existing one's).  0 or
 * -ENOMEM (the map is unchanged). */
int names_put(struct names *m, const char *key, void *value);
/* Removes `key`; returns its value, or NULL if it had none. */
void *names_del(struct names *m, const char *key);
/* Calls fn(ctx, key, value) for each entry, in no order; fn must not
 * change the map. */
void names_each(const struct names *m, void (*fn)(void *ctx, const char *key, void *value), void *ctx);
/* Empties the map, calling free_value (if not NULL) on each value. */
void names_clear(struct names *m, void (*free_value)(void *value));

#endif
