/* test_timers.c - the timer structure against a reference model. */
#include "internal.h"
#include "test.h"

#define NODES 1024

struct node {
  struct chime__timer e;
  chime_ns when;  /* the model's copy */
  uint64_t order; /* arming order, for FIFO among equal deadlines */
  bool armed;
};

static struct node nodes[NODES];
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

/* The model: the armed node with the least (when, order), if due. */
static struct node *model_min(void) {
  struct node *best = NULL;
  for (int i = 0; i < NODES; i++) {
    struct node *n = &nodes[i];
    if (n->armed && (!best || n->when < best->when || (n->when == best->when && n->order < best->order))) best = n;
  }
  return best;
}

static uint64_t count_armed(void) {
  uint64_t c = 0;
  for (int i = 0; i < NODES; i++)
    c += nodes[i].armed;
  return c;
}

/* Deadlines from every range: past, this slot, the wheel, the far heap;
 * often equal to each other. */
static chime_ns pick_when(chime_ns now) {
  switch (next_rand() % 6) {
  case 0: return now - (chime_ns)(next_rand() % CHIME_MS(5));
  case 1: return now + (chime_ns)(next_rand() % CHIME_MS(2));
  case 2: return now + (chime_ns)(next_rand() % CHIME_SEC(4));
  case 3: return now + (chime_ns)(next_rand() % CHIME_HOUR(3));
  case 4: return (now / CHIME_MS(250) + 1 + (chime_ns)(next_rand() % 8)) * CHIME_MS(250); /* collisions */
  default: return now + CHIME_SEC(5) + (chime_ns)(next_rand() % 3) * CHIME_SEC(1);        /* more */
  }
}

static void random_operations_match_the_model(void **state) {
  (void)state;
  struct chime__timers t;
  chime__timers_init(&t);
  assert_int_equal(chime__timers_reserve(&t, NODES), 0);
  memset(nodes, 0, sizeof nodes);
  chime_ns now = CHIME_HOUR(5);
  uint64_t order = 0;
  long pops = 0;
  for (int step = 0; step < 200000; step++) {
    uint64_t r = next_rand() % 100;
    struct node *n = &nodes[next_rand() % NODES];
    if (r < 45) { /* arm (or re-arm) */
      if (n->armed) chime__timers_del(&t, &n->e);
      n->when = pick_when(now);
      n->order = order++;
      n->armed = true;
      chime__timers_add(&t, &n->e, n->when);
    } else if (r < 60) { /* disarm */
      chime__timers_del(&t, &n->e);
      n->armed = false;
    } else if (r < 70) { /* time passes, sometimes a lot */
      now += (chime_ns)(next_rand() % (r < 68 ? CHIME_MS(3) : CHIME_MIN(20)));
    } else { /* pop everything due */
      struct chime__timer *e;
      while ((e = chime__timers_pop(&t, now))) {
        struct node *want = model_min();
        assert_non_null(want);
        assert_ptr_equal(e, &want->e);
        assert_true(want->when <= now);
        want->armed = false;
        pops++;
      }
      struct node *m = model_min();
      assert_true(!m || m->when > now);
      /* next() never later than the earliest deadline, exact when near */
      chime_ns next = chime__timers_next(&t, now);
      if (m) {
        assert_true(next <= m->when);
        assert_true(next > now);
        if (m->when - now < CHIME_MS(1)) assert_int_equal(next, m->when);
      } else {
        assert_int_equal(next, CHIME_NEVER);
      }
      assert_int_equal(t.count, count_armed());
    }
  }
  assert_int_equal(t.count, count_armed());
  assert_true(pops > 10000);
  chime__timers_fini(&t);
}

static void equal_deadlines_come_out_in_arming_order(void **state) {
  (void)state;
  struct chime__timers t;
  chime__timers_init(&t);
  assert_int_equal(chime__timers_reserve(&t, NODES), 0);
  /* Same deadline, armed from three distances: far heap first, then the
   * wheel, then the near heap, with the clock moving in between. */
  chime_ns d = CHIME_HOUR(1);
  chime_ns now = 0;
  for (int i = 0; i < NODES; i++) {
    if (i == NODES / 3) now = d - CHIME_SEC(2); /* within the wheel */
    if (i == 2 * NODES / 3) now = d - 100;      /* within this slot */
    chime__timers_next(&t, now);                /* lets the cursor follow */
    chime__timers_add(&t, &nodes[i].e, d);
  }
  for (int i = 0; i < NODES; i++) {
    struct chime__timer *e = chime__timers_pop(&t, d);
    assert_ptr_equal(e, &nodes[i].e);
  }
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  chime__timers_fini(&t);
}

/* The virtual clock's pattern: jump to the next deadline, pop what is due;
 * everything must come out exactly at its deadline. */
static void jumping_from_deadline_to_deadline_pops_each_on_time(void **state) {
  (void)state;
  enum { N = 20000 };
  static struct chime__timer e[N];
  struct chime__timers t;
  chime__timers_init(&t);
  assert_int_equal(chime__timers_reserve(&t, N), 0);
  for (int i = 0; i < N; i++)
    chime__timers_add(&t, &e[i], (chime_ns)(next_rand() % (uint64_t)CHIME_HOUR(2)));
  chime_ns now = 0;
  int popped = 0;
  while (t.count) {
    chime_ns next = chime__timers_next(&t, now);
    assert_true(next >= now);
    now = next;
    struct chime__timer *p;
    while ((p = chime__timers_pop(&t, now))) {
      assert_int_equal(p->when, now);
      popped++;
    }
  }
  assert_int_equal(popped, N);
  chime__timers_fini(&t);
}

static void far_deadlines_survive_long_jumps(void **state) {
  (void)state;
  struct chime__timers t;
  chime__timers_init(&t);
  assert_int_equal(chime__timers_reserve(&t, 3), 0);
  chime__timers_add(&t, &nodes[0].e, CHIME_HOUR(24 * 365));
  chime__timers_add(&t, &nodes[1].e, CHIME_HOUR(10));
  chime__timers_add(&t, &nodes[2].e, 5);
  assert_int_equal(chime__timers_next(&t, 0), 5);
  assert_ptr_equal(chime__timers_pop(&t, 5), &nodes[2].e);
  assert_int_equal(chime__timers_next(&t, 5), CHIME_HOUR(10));
  assert_null(chime__timers_pop(&t, CHIME_HOUR(10) - 1));
  assert_ptr_equal(chime__timers_pop(&t, CHIME_HOUR(11)), &nodes[1].e);
  assert_ptr_equal(chime__timers_pop(&t, CHIME_HOUR(24 * 366)), &nodes[0].e);
  assert_int_equal(chime__timers_next(&t, 0), CHIME_NEVER);
  chime__timers_fini(&t);
}

static void disarming_an_idle_entry_does_nothing(void **state) {
  (void)state;
  struct chime__timers t;
  chime__timers_init(&t);
  assert_int_equal(chime__timers_reserve(&t, 1), 0);
  struct chime__timer e = {0};
  chime__timers_del(&t, &e);
  assert_false(chime__timer_armed(&e));
  chime__timers_add(&t, &e, 10);
  assert_true(chime__timer_armed(&e));
  chime__timers_del(&t, &e);
  chime__timers_del(&t, &e);
  assert_int_equal(t.count, 0);
  chime__timers_fini(&t);
}

static void reserve_failure_changes_nothing(void **state) {
  (void)state;
  struct chime__timers t;
  chime__timers_init(&t);
  for (long n = 0;; n++) {
    long before = chime__test_failures();
    chime__test_fail_after(n, false);
    int rc = chime__timers_reserve(&t, 100);
    chime__test_fail_after(-1, false);
    if (chime__test_failures() == before) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(t.reserved, 0);
  }
  assert_int_equal(t.reserved, 100);
  chime__timers_fini(&t);
}

TEST_MAIN(cmocka_unit_test(random_operations_match_the_model),
          cmocka_unit_test(equal_deadlines_come_out_in_arming_order),
          cmocka_unit_test(jumping_from_deadline_to_deadline_pops_each_on_time),
          cmocka_unit_test(far_deadlines_survive_long_jumps), cmocka_unit_test(disarming_an_idle_entry_does_nothing),
          cmocka_unit_test(reserve_failure_changes_nothing))
