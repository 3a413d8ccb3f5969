/* prune.c - chime history prune (prune.h).  The daemon prunes as it
 * records (recorder.c); this prunes a database at once, after its bounds
 * were lowered or for a job no daemon runs any more, with the same
 * history_prune steps. */
#include "prune.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The jobs to prune, when neither a job nor a config names them: every
 * job on record. */
struct names_list {
  char **v;
  size_t n, cap;
  bool nomem;
};

static int add_name(void *ctx, const char *job) {
  struct names_list *l = ctx;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v) return l->nomem = true, 1;
    l->v = v, l->cap = cap;
  }
  if (!(l->v[l->n] = strdup(job ? job : ""))) return l->nomem = true, 1;
  l->n++;
  return 0;
}

/* Prunes one job, a step a transaction (a step the daemon's lock holds
 * up is tried again, for ten seconds): rows deleted, or a negative errno. */
static long long prune_job(struct history *h, const char *job, const struct history_bounds *b) {
  long long total = 0;
  int n, busy = 0;
  do {
    n = history_begin(h);
    if (n == 0) n = history_prune(h, job, b, chime_wall_now(), PRUNE_STEP);
    if (n >= 0 && history_commit(h) != 0) n = -EBUSY;
    if (n < 0) history_rollback(h);
    if (n == -EBUSY && ++busy < 100) {
      nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
      n = PRUNE_STEP;
      continue;
    }
    if (n < 0) return n;
    total += n;
  } while (n == PRUNE_STEP);
  return total;
}

int prune_history(const char *path, const char *job, const struct config *cfg, const struct history_bounds *given) {
  char err[1024];
  struct history *h = NULL;
  if (access(path, F_OK) != 0) {
    fprintf(stderr, "chime: no history yet: %s does not exist\n", path);
    return 0;
  }
  if (history_open(path, false, &h, err, sizeof err) != 0) {
    fprintf(stderr, "chime: %s\n", err);
    return 1;
  }
  struct names_list all = {0};
  int rc = 0;
  if (job)
    rc = add_name(&all, job);
  else if (cfg)
    for (size_t i = 0; rc == 0 && i < cfg->njobs; i++)
      rc = add_name(&all, cfg->jobs[i]->name);
  else
    rc = history_jobs(h, add_name, &all);
  if (all.nomem)
    fprintf(stderr, "chime: out of memory\n");
  else if (rc)
    fprintf(stderr, "chime: history database %s: %s\n", path, history_error(h));
  long long total = 0;
  for (size_t i = 0; rc == 0 && i < all.n; i++) {
    const struct history_bounds *b = given;
    for (size_t k = 0; !b && cfg && k < cfg->njobs; k++)
      if (strcmp(cfg->jobs[k]->name, all.v[i]) == 0) b = &cfg->jobs[k]->history;
    if (!b || !history_bounded(b)) {
      printf("%s: no bounds: kept whole\n", all.v[i]);
      continue;
    }
    long long n = prune_job(h, all.v[i], b);
    if (n < 0) {
      fprintf(stderr, "chime: history database %s: %s\n", path, history_error(h));
      rc = 1;
      break;
    }
    printf("%s: %lld row(s) pruned\n", all.v[i], n);
    total += n;
  }
  if (rc == 0) printf("%lld row(s) pruned in all\n", total);
  for (size_t i = 0; i < all.n; i++)
    free(all.v[i]);
  free(all.v);
  history_close(h);
  return rc || all.nomem ? 1 : 0;
}
