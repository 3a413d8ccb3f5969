/* machine.h - the machine layer: what the tasks layer is built on.
 *
 * Monotonic and real time (clock.c), deadlines (timers.c), per-loop slabs
 * of objects and their handles (slab.c), backends that wait for
 * descriptors (backend/), coroutines and their stacks (coro/), and the
 * calendar's computations (cron.c, tz.c).  Nothing here knows of tasks or
 * loops beyond the opaque chime_loop a backend hands to its callbacks.
 */
#ifndef CHIME_MACHINE_H
#define CHIME_MACHINE_H

#include "base.h"
#include "coro/coro.h"

/* ---- clock (clock.c) ---------------------------------------------------- */

/* CLOCK_MONOTONIC and CLOCK_REALTIME, in nanoseconds. */
chime_ns chime__mono(void);
chime_ns chime__realtime(void);

/* The run clock: CLOCK_MONOTONIC, read at a mark and extrapolated from
 * there with the CPU's time-stamp counter for up to 100 us, where the
 * kernel keeps time with that counter itself (clocksource "tsc", x86-64).
 * A reading costs a plain rdtsc (11 ns here) where clock_gettime costs 26:
 * the library reads it at the end of every run, a tenth of a fire's cost in
 * `scale`.  The counter's rate is measured against CLOCK_MONOTONIC after
 * 100 ms, then each second, and taken 1/512 slow, more than NTP's and
 * timesyncd's slews (500 ppm): an extrapolation is behind the clock, by at
 * most 0.2% of its span and the mark's own counter read (which follows the
 * clock's), never ahead (no run starts early by it).  A faster slew
 * (chrony's may reach 8%) could put one ahead by that share of its span
 * (8 us): each mark looks where an extrapolation would be, and if that is
 * ahead, stops extrapolating until the rate is measured again.  Until the
 * rate is known, and where the counter does not serve, a reading is a
 * clock_gettime. */
struct chime__tsc {
  uint64_t tsc;      /* the counter at the mark */
  chime_ns mono;     /* CLOCK_MONOTONIC at the mark */
  uint64_t ref_tsc;  /* the counter at the rate's reference reading */
  chime_ns ref_mono; /* CLOCK_MONOTONIC then (0: none yet) */
  uint64_t mult;     /* ns per count << 32, slowed by 1/512; 0: no extrapolation */
  uint64_t span;     /* counts an extrapolation may span (100 us) */
  bool again;        /* the mark's two reads were preempted apart: the next reading marks again */
};

/* Reads CLOCK_MONOTONIC, and marks the run clock there. */
chime_ns chime__tsc_mark(struct chime__tsc *c);

/* The run clock, now. */
static inline chime_ns chime__tsc_now(struct chime__tsc *c) {
#if defined(__x86_64__) && defined(__linux__)
  if (c->mult) {
    uint64_t d = __builtin_ia32_rdtsc() - c->tsc; /* a counter behind the mark's (another CPU's): huge */
    if (d < c->span) return c->mono + (chime_ns)((d * c->mult) >> 32);
  }
#endif
  return chime__tsc_mark(c);
}

/* ---- timers (timers.c) --------------------------------------------------- */

/* An entry in a loop's timer structure: 16 bytes, embedded in its owner.
 * `pos` says where the entry is (timers.c explains); pos & 3 == 0 means it
 * is not armed, and then its owner may use both fields as it likes. */
struct chime__timer {
  chime_ns when; /* the deadline */
  uintptr_t pos; /* where it is in the structure */
};

/* A wheel of slots for deadlines in the next few seconds, a sorted run for
 * the current slot, and a heap for the far future.  See timers.c. */
#define CHIME__WHEEL_BITS 12
#define CHIME__WHEEL_SLOTS (1u << CHIME__WHEEL_BITS)
#define CHIME__SLOT_SHIFT 20 /* slot width: 2^20 ns, about 1 ms */
#define CHIME__CHUNK 124     /* entries per chunk: 512-byte chunks */

struct chime__near {
  chime_ns when;
  struct chime__timer *e; /* NULL: disarmed (a tombstone) */
};

struct chime__far {
  chime_ns when;
  uint64_t seq; /* arming order among equal deadlines */
  struct chime__timer *e;
};

struct chime__chunk;
struct chime__chunk_block;
struct chime__slabs;

/* A wheel slot: its entries in arming order, in a ring of chunks. */
struct chime__slot {
  struct chime__chunk *tail; /* the last chunk (its next is the first), or NULL */
  uint32_t n;                /* elements written in the tail (the chunks before it are full) */
  uint32_t live;             /* live entries */
};

struct chime__timers {
  uint64_t cursor;          /* slot number (when >> SLOT_SHIFT) of the next slot to expand */
  uint64_t count;           /* armed entries */
  uint64_t reserved;        /* entries that may be armed at once */
  uint64_t cap;             /* room in the near run, the far heap and the scratch (>= reserved) */
  uint64_t seq;             /* arming counter for the far heap */
  uint64_t wheel_count;     /* live entries in the wheel */
  uint64_t nchunks;         /* chunks allocated */
  uint64_t chunks_checked;  /* the largest reservation known to have its chunks */
  struct chime__near *near; /* the sorted run is near[near_head, near_tail) */
  uint32_t near_head, near_tail;
  struct chime__far *far; /* binary min-heap of nfar elements */
  uint32_t nfar;
  struct chime__near *scratch;       /* for sorting a slot */
  struct chime__chunk *pool;         /* chunks given back */
  struct chime__chunk_block *blocks; /* every block mapped, in order */
  struct chime__chunk_block *last_block;
  struct chime__chunk_block *fresh_block; /* the block whose chunks [fresh, end) were never used */
  uint32_t fresh;
  const struct chime__slabs *objs;        /* the entries' owners: wheel arrays hold their indices */
  uint64_t summary;                       /* bit i: bits[i] != 0 */
  uint64_t bits[CHIME__WHEEL_SLOTS / 64]; /* bit s: slot s has live entries */
  struct chime__slot slot[CHIME__WHEEL_SLOTS];
};

/* `now`: the clock's reading, where the wheel starts.  Every entry armed
 * must be the timer of an object of `objs`. */
void chime__timers_init(struct chime__timers *t, chime_ns now, const struct chime__slabs *objs);
void chime__timers_fini(struct chime__timers *t);
/* Makes room for `n` more entries that may be armed at once, so that arming
 * never allocates.  Returns 0 or -ENOMEM. */
int chime__timers_reserve(struct chime__timers *t, uint64_t n);
/* Gives back room reserved for `n` entries (their owners are gone). */
void chime__timers_unreserve(struct chime__timers *t, uint64_t n);
/* Arms an entry that is not armed.  Never fails (room was reserved). */
void chime__timers_add(struct chime__timers *t, struct chime__timer *e, chime_ns when);
/* Disarms an entry; does nothing if it is not armed. */
void chime__timers_del(struct chime__timers *t, struct chime__timer *e);
/* A time no later than the earliest deadline (the earliest deadline itself
 * when it is within a millisecond or two of `now`, else possibly the start
 * of its slot: waking then and asking again gives the exact one), or
 * CHIME_NEVER if nothing is armed. */
chime_ns chime__timers_next(struct chime__timers *t, chime_ns now);
/* Disarms and returns the earliest entry if its deadline is <= now, else
 * NULL.  Entries with equal deadlines come out in the order they were
 * armed. */
struct chime__timer *chime__timers_pop(struct chime__timers *t, chime_ns now);

static inline bool chime__timer_armed(const struct chime__timer *e) { return (e->pos & 3) != 0; }

/* ---- objects and slabs (slab.c) ----------------------------------------- */

/* An object's kind: CHIME__FREE for a free slot; the layers above number
 * theirs from 1 (loop.h: tasks 1, jobs 2). */
#define CHIME__FREE 0

/* The common header of every object a handle can name. */
struct chime__obj {
  uint32_t gen;   /* generation: bumped when the object is freed */
  uint8_t kind;   /* CHIME__FREE, or the kind of an upper layer */
  uint8_t state;  /* kind-specific */
  uint16_t flags; /* kind-specific */
  struct chime__timer timer;
};

/* Object classes: each slab holds objects of one size; CHIME__CLASS_64X
 * gives each a side record of CHIME__SIDE_BYTES too (chime__obj_side). */
enum chime__class { CHIME__CLASS_256, CHIME__CLASS_64X, CHIME__NCLASSES };
#define CHIME__SIDE_BYTES 80

struct chime__slabs {
  struct chime__slab **dir; /* slab number -> slab */
  uint32_t nslabs, cap;
  uint32_t seed;                             /* first generation of fresh slots */
  struct chime__obj *free[CHIME__NCLASSES];  /* free lists */
  struct chime__slab *bump[CHIME__NCLASSES]; /* slab with never-used slots */
};

void chime__slabs_init(struct chime__slabs *s, uint32_t seed);
void chime__slabs_fini(struct chime__slabs *s);
/* A zeroed object of the class, generation set, kind left FREE for the
 * caller to set.  NULL on ENOMEM. */
struct chime__obj *chime__obj_alloc(struct chime__slabs *s, enum chime__class c);
/* Frees an object: its generation moves on, so its handles go stale. */
void chime__obj_free(struct chime__slabs *s, struct chime__obj *o);
/* A slab's header, in its slot 0 (slab.c): what the functions below read,
 * inline, for they run several times for each job a loop creates,
 * cancels or fires. */
#define CHIME__SLAB_SHIFT 21 /* slabs of 2 MiB, aligned to 2 MiB */
#define CHIME__SLOT_BITS 16  /* enough for 2 MiB of 32-byte objects */
#define CHIME__GEN_MASK 0x7fffffffu
struct chime__slab {
  uint32_t number;    /* position in the directory */
  uint32_t used;      /* slots handed out by bumping (slot 0 included) */
  uint32_t slots;     /* SLAB_BYTES / size */
  uint32_t size;      /* bytes of an object */
  uint64_t magic;     /* offset / size as (offset * magic) >> 32: ceil(2^32 / size) */
  char *side;         /* the side records, slot by slot (NULL: the class has none) */
  size_t side_bytes;  /* of their mapping */
  uint32_t side_size; /* bytes of a side record */
  uint8_t cls;        /* enum chime__class */
};

static inline struct chime__slab *chime__slab_of(const struct chime__obj *o) {
  return (struct chime__slab *)((uintptr_t)o & ~(((uintptr_t)1 << CHIME__SLAB_SHIFT) - 1));
}

/* The slot of an object in its slab. */
static inline uint32_t chime__obj_slot(const struct chime__slab *slab, const struct chime__obj *o) {
  return (uint32_t)((((uintptr_t)o & (((uintptr_t)1 << CHIME__SLAB_SHIFT) - 1)) * slab->magic) >> 32);
}

/* The side record of an object of a class that has them: as it was left
 * by the slot's previous object, or zero if it had none. */
static inline void *chime__obj_side(const struct chime__obj *o) {
  const struct chime__slab *slab = chime__slab_of(o);
  return slab->side + (size_t)chime__obj_slot(slab, o) * slab->side_size;
}

/* An object's index in its loop's slabs (never 0: slot 0 of a slab is its
 * header), and the object at an index (which must be one). */
static inline uint32_t chime__obj_index(const struct chime__obj *o) {
  const struct chime__slab *slab = chime__slab_of(o);
  return slab->number << CHIME__SLOT_BITS | chime__obj_slot(slab, o);
}

static inline struct chime__obj *chime__obj_at(const struct chime__slabs *s, uint32_t index) {
  const struct chime__slab *slab = s->dir[index >> CHIME__SLOT_BITS];
  return (struct chime__obj *)((char *)slab + (size_t)(index & ((1u << CHIME__SLOT_BITS) - 1)) * slab->size);
}

/* The handle of a live object, and the same handle borrowed (it names the
 * object without owning it). */
static inline uint64_t chime__obj_handle(const struct chime__obj *o) {
  return (uint64_t)o->gen << 32 | chime__obj_index(o);
}
#define CHIME__BORROWED (1ull << 63)
static inline bool chime__handle_borrowed(uint64_t id) { return (id & CHIME__BORROWED) != 0; }

/* The generation after g (never 0). */
static inline uint32_t chime__next_gen(uint32_t g) {
  g = (g + 1) & CHIME__GEN_MASK;
  return g ? g : 1;
}

/* The object's generation moves on: handles made before no longer name it. */
static inline void chime__obj_rekey(struct chime__obj *o) { o->gen = chime__next_gen(o->gen); }

/* The live object a handle (owning or borrowed) names, or NULL. */
static inline struct chime__obj *chime__obj_lookup(const struct chime__slabs *s, uint64_t id) {
  uint32_t index = (uint32_t)id, gen = (uint32_t)(id >> 32) & CHIME__GEN_MASK;
  uint32_t number = index >> CHIME__SLOT_BITS, slot = index & ((1u << CHIME__SLOT_BITS) - 1);
  if (number >= s->nslabs || slot == 0) return NULL;
  const struct chime__slab *slab = s->dir[number];
  if (slot >= slab->used) return NULL;
  struct chime__obj *o = (struct chime__obj *)((char *)slab + (size_t)slot * slab->size);
  if (o->gen != gen || o->kind == CHIME__FREE) return NULL;
  return o;
}
/* Calls fn(o, ctx) for every object of class c that is not free, in slab
 * order; fn may free the object it is given. */
void chime__slabs_each(struct chime__slabs *s, enum chime__class c, void (*fn)(struct chime__obj *o, void *ctx),
                       void *ctx);

/* ---- backends (backend/) --------------------------------------------------- */

struct chime__io;
typedef void (*chime__io_cb)(chime_loop *loop, struct chime__io *io, uint32_t revents);

/* A file descriptor the loop watches.  Events use poll(2)'s bits. */
struct chime__io {
  int fd;
  uint32_t events; /* POLLIN, POLLOUT: what is being watched (0: not registered) */
  uint32_t index;  /* backend-private (poll: position in its array) */
  bool oneshot;    /* disarmed by its first event, until armed again */
  chime__io_cb cb; /* called with the ready events */
};

struct chime__poller;

struct chime__backend_ops {
  const char *name;
  int (*init)(struct chime__poller *p);
  void (*fini)(struct chime__poller *p);
  int (*add)(struct chime__poller *p, struct chime__io *io);
  int (*mod)(struct chime__poller *p, struct chime__io *io);
  void (*del)(struct chime__poller *p, struct chime__io *io);
  /* Waits up to `timeout` ns (< 0: without bound, 0: not at all), never
   * returning early because of rounding, and calls the callbacks of ready
   * descriptors.  Returns the number of callbacks, or a negative errno. */
  int (*wait)(struct chime__poller *p, chime_ns timeout);
  /* A descriptor readable while a wait would report something, or NULL. */
  int (*fd)(const struct chime__poller *p);
  /* mod fails (-ENOENT) when the descriptor's file is not the one added. */
  bool same_file;
};

/* A backend at work: its operations, its state, and the loop its
 * descriptors' callbacks are given. */
struct chime__poller {
  const struct chime__backend_ops *ops;
  void *be;
  chime_loop *loop;
};

/* Whole milliseconds for poll(2) and epoll_wait(2): rounded up, so that a
 * wait never ends early; < 0 stays -1 (no bound). */
static inline int chime__timeout_ms(chime_ns timeout) {
  if (timeout < 0) return -1;
  chime_ns up = timeout / 1000000 + (timeout % 1000000 != 0);
  return up > 0x7fffffff ? 0x7fffffff : (int)up;
}

/* Under ThreadSanitizer a signal handler runs only inside a call it
 * intercepts as blocking (poll, epoll_wait), not in a raw system call
 * (epoll_pwait2) or ppoll: there the backends wait in whole milliseconds,
 * so that signals reach their loop as they do without it. */
#if defined(__SANITIZE_THREAD__)
#define CHIME__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHIME__TSAN 1
#endif
#endif
#ifndef CHIME__TSAN
#define CHIME__TSAN 0
#endif

#ifdef __linux__
extern const struct chime__backend_ops chime__epoll_ops;
#endif
extern const struct chime__backend_ops chime__poll_ops;

/* ---- cron expressions (cron.c) ------------------------------------------ */

bool chime__cron_equal(const chime_cron_expr *a, const chime_cron_expr *b);
chime_cron_expr *chime__cron_dup(const chime_cron_expr *c);

#endif
