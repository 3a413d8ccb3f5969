/* argv.h - splitting a command line into words, as a shell would split a
 * simple command, without ever running a shell. */
#ifndef CHIME_CLI_ARGV_H
#define CHIME_CLI_ARGV_H

#include <stdbool.h>
#include <stddef.h>

/* The most words a command may have, and the most bytes its text may have:
 * bounds that keep a hostile config from costing more than a little memory. */
#define ARGV_MAX_WORDS 4096
#define ARGV_MAX_TEXT 65536

/* Splits `text` into words by the rules of a POSIX shell's simple command:
 * blanks (space, tab, newline) separate words; '...' keeps everything up to
 * the next quote as it is; "..." keeps everything except that a backslash
 * escapes $ ` " \ and newline; a backslash outside quotes keeps the next
 * character.  Whatever only a shell could do is refused rather than passed
 * on literally: unquoted | & ; < > ( ), a '#' starting a word, and $ or `
 * outside single quotes (expansions).
 * On success stores in *argv a NULL-terminated array of the words (one
 * allocation: free it with free()), in *argc their count (at least 1), and
 * returns 0.  On error returns -EINVAL (or -ENOMEM), leaves the outputs
 * untouched, and writes "column N: why" into err (if not NULL). */
int argv_split(const char *text, char ***argv, int *argc, char *err, size_t errsize);

/* A copy of the NULL-terminated list v (NULL: none) in one allocation,
 * as argv_split makes, with room for `extra` more entries (NULL-filled)
 * after its own, whose strings are then the caller's.  NULL for a NULL v
 * without extra; NULL with *nomem set when out of memory. */
char **argv_copy(char *const *v, size_t extra, bool *nomem);

#endif
