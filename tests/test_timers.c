/* test_timers.c - the timer structure against a reference model. */
#include "machine.h"
#include "test.h"

#define NODES 1024

/* Timer entries live in slab objects (the wheel keeps their indices). */
static struct chime__slabs slabs;

static struct chime__timer *new_entry(void) {
  struct chime__obj *o = chime__obj_alloc(&slabs, CHIME__CLASS_256);
  assert_non_null(o);
  o->kind = 1; /* any kind but CHIME__FREE */
  return &o->timer;
}

struct node {
  struct chime__timer *e;
  chime_ns when;  /* the model's copy */
  uint64_t order; /* arming order, for FIFO among equal deadlines */
  bool armed;
};

static struct node nodes[NODES];

/* A timer structure and NODES entries, all idle. */
static void setup_timers(struct chime__timers *t, chime_ns now, uint64_t reserve) {
  chime__slabs_init(&slabs, 1);
  chime__timers_init(t, now, &slabs);
  assert_int_equal(chime__timers_reserve(t, reserve), 0);
  memset(nodes, 0, sizeof nodes);
  for (int i = 0; i < NODES; i++)
    nodes[i].e = new_entry();
}

static void teardown_timers(struct chime__timers *t) {
  chime__timers_fini(t);
  chime__slabs_fini(&slabs);
}
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
  setup_timers(&t, 0, NODES);
  chime_ns now = CHIME_HOUR(5);
  uint64_t order = 0;
  long pops = 0;
  for (int step = 0; step < 200000; step++) {
    uint64_t r = next_rand() % 100;
    struct node *n = &nodes[next_rand() % NODES];
    if (r < 45) { /* arm (or re-arm) */
      if (n->armed) chime__timers_del(&t, n->e);
      n->when = pick_when(now);
      n->order = order++;
      n->armed = true;
      chime__timers_add(&t, n->e, n->when);
    } else if (r < 60) { /* disarm */
      chime__timers_del(&t, n->e);
      n->armed = false;
    } else if (r < 70) { /* time passes, sometimes a lot */
      now += (chime_ns)(next_rand() % (r < 68 ? CHIME_MS(3) : CHIME_MIN(20)));
    } else { /* pop everything due */
      struct chime__timer *e;
      while ((e = chime__timers_pop(&t, now))) {
        struct node *want = model_min();
        assert_non_null(want);
        assert_ptr_equal(e, want->e);
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
  teardown_timers(&t);
}

static void equal_deadlines_come_out_in_arming_order(void **state) {
  (void)state;
  struct chime__timers t;
  setup_timers(&t, 0, NODES);
  /* Same deadline, armed from three distances: far heap first, then the
   * wheel, then the near heap, with the clock moving in between. */
  chime_ns d = CHIME_HOUR(1);
  chime_ns now = 0;
  for (int i = 0; i < NODES; i++) {
    if (i == NODES / 3) now = d - CHIME_SEC(2); /* within the wheel */
    if (i == 2 * NODES / 3) now = d - 100;      /* within this slot */
    chime__timers_next(&t, now);                /* lets the cursor follow */
    chime__timers_add(&t, nodes[i].e, d);
  }
  for (int i = 0; i < NODES; i++) {
    struct chime__timer *e = chime__timers_pop(&t, d);
    assert_ptr_equal(e, nodes[i].e);
  }
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  teardown_timers(&t);
}

/* Slots expanded into the near run come out in (deadline, arming order)
 * whichever way they were filled: in deadline order already (nothing to
 * sort), shuffled and crowded (the radix sort, in place), shuffled and
 * sparse (the insertion sort); ties every 50 us test stability. */
static void crowded_slots_come_out_sorted_and_stable(void **state) {
  (void)state;
  struct chime__timers t;
  setup_timers(&t, 0, NODES);
  const chime_ns base = CHIME_SEC(2) & ~(((chime_ns)1 << CHIME__SLOT_SHIFT) - 1),
                 slot = (chime_ns)1 << CHIME__SLOT_SHIFT;
  int i = 0;
  for (; i < 300; i++) /* slot 0: in deadline order, in pairs of ties */
    nodes[i].when = base + (chime_ns)(i / 2) * (slot / 150);
  for (; i < NODES - 20; i++) /* slots 1 to 3: shuffled, ties */
    nodes[i].when = base + slot + (chime_ns)(next_rand() % (uint64_t)(3 * slot)) / CHIME_US(50) * CHIME_US(50);
  for (; i < NODES; i++) /* slot 4: 20 shuffled, ties */
    nodes[i].when = base + 4 * slot + (chime_ns)(next_rand() % 5) * CHIME_US(50);
  for (i = 0; i < NODES; i++) {
    nodes[i].order = (uint64_t)i;
    nodes[i].armed = true;
    chime__timers_add(&t, nodes[i].e, nodes[i].when);
  }
  for (i = 0; i < NODES; i++) {
    struct chime__timer *e = chime__timers_pop(&t, base + 5 * slot);
    struct node *want = model_min(); /* least (deadline, arming order) */
    assert_non_null(e);
    assert_ptr_equal(e, want->e);
    want->armed = false;
  }
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  teardown_timers(&t);
}

/* The virtual clock's pattern: jump to the next deadline, pop what is due;
 * everything must come out exactly at its deadline. */
static void jumping_from_deadline_to_deadline_pops_each_on_time(void **state) {
  (void)state;
  enum { N = 20000 };
  struct chime__timers t;
  setup_timers(&t, 0, N);
  for (int i = 0; i < N; i++)
    chime__timers_add(&t, new_entry(), (chime_ns)(next_rand() % (uint64_t)CHIME_HOUR(2)));
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
  teardown_timers(&t);
}

/* Disarmed entries leave stale elements in their slot's array while the
 * slot has live entries; when they fill the reserved chunks the wheel is
 * compacted, and nothing is lost, repeated or reordered. */
static void stale_elements_never_exhaust_the_reserved_room(void **state) {
  (void)state;
  enum { N = 200 };
  struct chime__timers t;
  setup_timers(&t, 0, N);
  uint64_t chunks = t.nchunks;
  chime_ns d = CHIME_SEC(2);
  for (int i = 0; i < N; i += 2)
    chime__timers_add(&t, nodes[i].e, d + i); /* the keepers */
  for (int round = 0; round < 5000; round++)
    for (int i = 1; i < N; i += 2) {
      chime__timers_add(&t, nodes[i].e, d + i);
      chime__timers_del(&t, nodes[i].e);
    }
  assert_int_equal(t.nchunks, chunks); /* no chunk allocated beyond the reservation */
  for (int i = 1; i < N; i += 2)
    chime__timers_add(&t, nodes[i].e, d + i);
  for (int i = 0; i < N; i++)
    assert_ptr_equal(chime__timers_pop(&t, d + N), nodes[i].e);
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  teardown_timers(&t);
}

/* An entry disarmed in the wheel, its object freed and handed out again:
 * the slot's old element now holds the index of a new owner, which is
 * armed in the same slot, in a later one, or not at all.  Each armed entry
 * comes out once, the unarmed one never. */
static void a_stale_element_never_names_a_reused_object(void **state) {
  (void)state;
  struct chime__timers t;
  setup_timers(&t, 0, 4);
  struct chime__timer *keeper = nodes[0].e; /* keeps the slot alive */
  for (int how = 0; how < 3; how++) {
    chime_ns d = CHIME_SEC(2 + 3 * how); /* within the wheel's reach of the last pop */
    struct chime__timer *e = new_entry();
    chime__timers_add(&t, e, d + 10); /* the element that goes stale, before the keeper's */
    chime__timers_add(&t, keeper, d);
    assert_int_equal(e->pos & 3, 1); /* in the wheel */
    chime__timers_del(&t, e);
    chime__obj_free(&slabs, CHIME__CONTAINER(e, struct chime__obj, timer));
    struct chime__timer *again = new_entry();
    assert_ptr_equal(again, e); /* the same object, so the same index */
    if (how == 0) chime__timers_add(&t, again, d + 20);
    if (how == 1) chime__timers_add(&t, again, d + CHIME_SEC(1));
    assert_ptr_equal(chime__timers_pop(&t, d + CHIME_SEC(2)), keeper);
    if (how < 2) assert_ptr_equal(chime__timers_pop(&t, d + CHIME_SEC(2)), again);
    assert_null(chime__timers_pop(&t, d + CHIME_SEC(2)));
    assert_int_equal(t.count, 0);
    chime__obj_free(&slabs, CHIME__CONTAINER(again, struct chime__obj, timer));
  }
  teardown_timers(&t);
}

/* A compaction leaves a slot's chunks packed but its last one short; more
 * arming fills it and goes on into new chunks; a second compaction (for
 * another slot) packs the slot again.  No entry is lost or repeated, and
 * order holds. */
static void compactions_never_lose_entries(void **state) {
  (void)state;
  enum { RESERVE = 400 };
  struct chime__timers t;
  setup_timers(&t, 0, RESERVE);
  uint64_t chunks = t.nchunks, room = CHIME__CHUNK * chunks; /* elements the chunks hold */
  chime_ns d = CHIME_SEC(2), d2 = d + CHIME_MS(3);
  int armed = 0;
  for (; armed < 100; armed++)
    chime__timers_add(&t, nodes[armed].e, d + armed);
  for (uint64_t m = 0; m < room; m++) { /* stale elements until the pool runs dry */
    chime__timers_add(&t, nodes[armed].e, d + armed);
    chime__timers_del(&t, nodes[armed].e);
  }
  for (; armed < 224; armed++)
    chime__timers_add(&t, nodes[armed].e, d + armed);
  chime__timers_add(&t, nodes[armed].e, d2); /* another slot, compacted the same way */
  for (uint64_t m = 0; m < room; m++) {
    chime__timers_add(&t, nodes[armed + 1].e, d2 + 1);
    chime__timers_del(&t, nodes[armed + 1].e);
  }
  armed++;
  assert_int_equal(t.nchunks, chunks); /* no chunk beyond the reservation */
  for (int i = 0; i < armed; i++)
    assert_ptr_equal(chime__timers_pop(&t, d + CHIME_SEC(1)), nodes[i].e);
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  teardown_timers(&t);
}

static void far_deadlines_survive_long_jumps(void **state) {
  (void)state;
  struct chime__timers t;
  setup_timers(&t, 0, 3);
  chime__timers_add(&t, nodes[0].e, CHIME_HOUR(24 * 365));
  chime__timers_add(&t, nodes[1].e, CHIME_HOUR(10));
  chime__timers_add(&t, nodes[2].e, 5);
  assert_int_equal(chime__timers_next(&t, 0), 5);
  assert_ptr_equal(chime__timers_pop(&t, 5), nodes[2].e);
  assert_int_equal(chime__timers_next(&t, 5), CHIME_HOUR(10));
  assert_null(chime__timers_pop(&t, CHIME_HOUR(10) - 1));
  assert_ptr_equal(chime__timers_pop(&t, CHIME_HOUR(11)), nodes[1].e);
  assert_ptr_equal(chime__timers_pop(&t, CHIME_HOUR(24 * 366)), nodes[0].e);
  assert_int_equal(chime__timers_next(&t, 0), CHIME_NEVER);
  teardown_timers(&t);
}

static void disarming_an_idle_entry_does_nothing(void **state) {
  (void)state;
  struct chime__timers t;
  setup_timers(&t, 0, 1);
  struct chime__timer *e = nodes[0].e;
  chime__timers_del(&t, e);
  assert_false(chime__timer_armed(e));
  chime__timers_add(&t, e, CHIME_SEC(1)); /* in the wheel */
  assert_true(chime__timer_armed(e));
  chime__timers_del(&t, e);
  chime__timers_del(&t, e);
  chime__timers_add(&t, e, 10); /* in the near run */
  chime__timers_del(&t, e);
  chime__timers_add(&t, e, CHIME_HOUR(5)); /* in the far heap */
  chime__timers_del(&t, e);
  chime__timers_del(&t, e);
  assert_int_equal(t.count, 0);
  assert_null(chime__timers_pop(&t, CHIME_NEVER - 1));
  teardown_timers(&t);
}

static void reserve_failure_changes_nothing(void **state) {
  (void)state;
  struct chime__timers t;
  chime__slabs_init(&slabs, 1);
  chime__timers_init(&t, 0, &slabs);
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
  teardown_timers(&t);
}

TEST_MAIN(cmocka_unit_test(random_operations_match_the_model),
          cmocka_unit_test(equal_deadlines_come_out_in_arming_order),
          cmocka_unit_test(crowded_slots_come_out_sorted_and_stable),
          cmocka_unit_test(jumping_from_deadline_to_deadline_pops_each_on_time),
          cmocka_unit_test(stale_elements_never_exhaust_the_reserved_room),
          cmocka_unit_test(a_stale_element_never_names_a_reused_object),
          cmocka_unit_test(compactions_never_lose_entries), cmocka_unit_test(far_deadlines_survive_long_jumps),
          cmocka_unit_test(disarming_an_idle_entry_does_nothing), cmocka_unit_test(reserve_failure_changes_nothing))
