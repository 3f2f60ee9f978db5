/*
 * model/channel.pml - SPIN model of the channel's wait/wake protocol.
 *
 * Models libipc/channel.cpp (block(), wake_*(), close(), mpmc_try_*,
 * spsc_refresh_*) and the fast paths in include/ipc/channel.hpp, with a
 * per-process store buffer for the publishing index store so that the
 * asymmetric barrier (light_barrier = compiler barrier, heavy_barrier =
 * membarrier) is modelled honestly. docs/model.md maps every variable and
 * label to the code; model/run.sh runs the configurations.
 *
 * Configuration (spin -D...):
 *   KIND       0 spsc, 1 mpmc
 *   CAP        ring capacity (1 or 2; slot count == capacity)
 *   NS, NR     senders, receivers (spsc: 1 and 1)
 *   NMSG       messages per sender
 *   RTIMED     the last RTIMED receivers use timed waits (recv_until)
 *   QUIT       a timed receiver may give up after a timeout
 *   CLOSE      0 never, 1 after every sender has returned, 2 at any time
 *   NO_MEMBARRIER  heavy_barrier() without membarrier (expected to fail)
 */
#ifndef KIND
#define KIND 0
#endif
#ifndef CAP
#define CAP 1
#endif
#ifndef NS
#define NS 1
#endif
#ifndef NR
#define NR 1
#endif
#ifndef NMSG
#define NMSG 3
#endif
#ifndef RTIMED
#define RTIMED 0
#endif
#ifndef QUIT
#define QUIT 0
#endif
#ifndef CLOSE
#define CLOSE 0
#endif

#define SPSC 0
#define MPMC 1

/* Status */
#define OK 0
#define WB 1        /* would_block */
#define TIMED_OUT 2
#define CLOSED 3

/* futex_wait results */
#define WOKEN 0
#define WAITING 1

/* wait lines: not_empty (receivers sleep), not_full (senders sleep) */
#define NE 0
#define NF 1

/* shared words subject to store buffering */
#define TAIL 0
#define HEAD 1
#define SEQ0 2      /* MPMC slot turns: SEQ0 + slot */

#define NPROC 5     /* workers 0..3, closer 4 (never buffers) */
#define ALL 255

byte mem[4];                /* tail, head, slot[0].seq, slot[1].seq */
byte dp[2];                 /* slot payload: producer */
byte dk[2];                 /* slot payload: message number 1..NMSG */
bool closed;                /* header.closed */
byte seq[2];                /* not_empty.seq, not_full.seq (futex words) */
byte waiters[2];            /* not_empty.waiters, not_full.waiters */
byte queued[2];             /* futex wait queue per line: a bit per worker */

/* store buffer: one entry per process, the index store only */
bool sb_valid[NPROC];
byte sb_loc[NPROC];
byte sb_val[NPROC];

/* bookkeeping for the properties */
byte next[2];               /* messages of producer p received so far */
byte sent_ok[2];            /* sends of producer p that returned ok */
byte late;                  /* publications that became visible after close */
byte senders_done;

/* A publication reaching memory: counts it as late if close came first. */
#define PUBLISHES(loc, v) ((KIND == SPSC && (loc) == TAIL) || (KIND == MPMC && (loc) >= SEQ0 && ((v) % 2) == 1))

inline flush(i) {
  if
  :: sb_valid[i] ->
     if
     :: closed && PUBLISHES(sb_loc[i], sb_val[i]) -> late++
     :: else -> skip
     fi;
     mem[sb_loc[i]] = sb_val[i];
     sb_valid[i] = 0
  :: else -> skip
  fi
}

/* load with store-to-load forwarding from our own buffer */
inline load(loc, dst) {
  d_step {
    if
    :: sb_valid[me] && sb_loc[me] == loc -> dst = sb_val[me]
    :: else -> dst = mem[loc]
    fi
  }
}

/* a release store of an index: goes through the store buffer (FIFO of one) */
inline store_rel(loc, v) {
  atomic {
    flush(me);
    sb_loc[me] = loc; sb_val[me] = v; sb_valid[me] = 1
  }
}

/* heavy_barrier(): seq_cst fence, membarrier(GLOBAL_EXPEDITED), fence.
 * membarrier makes every other running thread execute a full barrier:
 * every process's buffered store becomes visible. */
inline heavy_barrier() {
  atomic {
    flush(me);
#ifndef NO_MEMBARRIER
    flush(0); flush(1); flush(2); flush(3);
#endif
  }
}

/* FUTEX_WAKE(&seq[line], n): n = 1 or ALL */
inline futex_wake(line, n) {
  atomic {
    if
    :: n == ALL -> queued[line] = 0
    :: else ->
       if
       :: (queued[line] & 1) != 0 -> queued[line] = queued[line] & 14
       :: (queued[line] & 2) != 0 -> queued[line] = queued[line] & 13
       :: (queued[line] & 4) != 0 -> queued[line] = queued[line] & 11
       :: (queued[line] & 8) != 0 -> queued[line] = queued[line] & 7
       :: queued[line] == 0 -> skip
       fi
    fi
  }
}

/* wake_receivers / wake_senders: R3 seq.fetch_add(1, release), FUTEX_WAKE */
inline wake(line, n) {
  atomic { flush(me); seq[line]++ };
  futex_wake(line, n)
}

/* futex_wait(&seq[line], s_seq, deadline) -> fr */
inline futex_wait(line) {
  atomic {
    flush(me);              /* the syscall and the futex's own smp_mb */
    if
    :: seq[line] != s_seq -> fr = WOKEN      /* EAGAIN: value_changed */
    :: else -> queued[line] = queued[line] | mybit; fr = WAITING
    fi
  };
  if
  :: fr == WAITING ->
     if
     :: atomic { (queued[line] & mybit) == 0 -> fr = WOKEN }
     :: atomic { timed && (queued[line] & mybit) != 0 ->
                 queued[line] = queued[line] & (15 - mybit); fr = TIMED_OUT }
     fi;
     /* a wake that races with the deadline may be spent on a waiter that
      * still reports ETIMEDOUT */
     if
     :: fr == WOKEN && timed -> if :: fr = TIMED_OUT :: skip fi
     :: else -> skip
     fi
  :: else -> skip
  fi
}

/* ---------------- SPSC ------------------------------------------------ */

inline spsc_try_send() {
  if
  :: atomic { closed -> st = CLOSED }
  :: atomic { !closed ->          /* guards and refresh: one step */
     st = OK;
     if
     :: own - other >= CAP ->
        /* spsc_refresh_head(): tail relaxed, A1 head acquire */
        load(TAIL, t); load(HEAD, h);
        assert(t - h <= CAP);
        own = t; other = h;
        if :: t - h == CAP -> st = WB :: else -> skip fi
     :: else -> skip
     fi
     };
     if
     :: st == OK ->
        atomic {
          dp[own % CAP] = prod; dk[own % CAP] = k;             /* commit */
          own++;
          store_rel(TAIL, own);                                /* R1 */
          /* light_barrier(): compiler barrier only; relaxed load */
          wk = (waiters[NE] != 0)
        };
        if :: wk -> wake(NE, 1) :: else -> skip fi
     :: else -> skip
     fi
  fi
}

inline take(slot) {
  d_step {
    assert(dk[slot] == next[dp[slot]] + 1);   /* exactly once, in order */
    next[dp[slot]]++; got++
  }
}

inline spsc_try_recv() {
  atomic {                     /* refresh and copy-out: one step */
  st = OK;
  if
  :: other == own ->
     /* spsc_refresh_tail() */
     load(HEAD, h); load(TAIL, t);                               /* A2 */
     assert(t - h <= CAP);
     own = h; other = t;
     if
     :: t != h -> skip
     :: else ->
        if
        :: !closed -> st = WB
        :: else ->
           load(TAIL, t);
           assert(t - h <= CAP);
           other = t;
           if :: t == h -> st = CLOSED :: else -> skip fi
        fi
     fi
  :: else -> skip
  fi;
  if
  :: st == OK -> take(own % CAP); own++
  :: else -> skip
  fi
  };
  if
  :: st == OK ->
     atomic {
       store_rel(HEAD, own);                                     /* R2 */
       wk = (waiters[NF] != 0)
     };
     if :: wk -> wake(NF, 1) :: else -> skip fi
  :: else -> skip
  fi
}

/* ---------------- MPMC (Vyukov, lap parity) ---------------------------- */

inline mpmc_try_send() {
  if
  :: atomic { closed -> st = CLOSED }
  :: atomic { !closed ->          /* guards and claim: one step (docs/model.md) */
     st = OK;
     pos = mem[TAIL];
     do
     :: load(SEQ0 + pos % CAP, sq);                              /* A4 */
        diff = sq - 2 * (pos / CAP);
        if
        :: diff == 0 ->
           atomic {                                              /* tail CAS */
             if
             :: mem[TAIL] == pos -> mem[TAIL] = pos + 1; break
             :: else -> pos = mem[TAIL]
             fi
           }
        :: diff < 0 ->
           assert(diff >= -2);                                   /* not corrupted */
           st = WB; break
        :: diff > 0 ->
           t = mem[TAIL];
           assert(t != pos);
           pos = t
        fi
     od
     };
     if
     :: st == OK ->
        atomic {
          dp[pos % CAP] = prod; dk[pos % CAP] = k;               /* commit */
          store_rel(SEQ0 + pos % CAP, 2 * (pos / CAP) + 1);      /* R4 */
          /* light_barrier(); then the relaxed load of waiters */
          wk = (waiters[NE] != 0)
        };
        if :: wk -> wake(NE, 1) :: else -> skip fi
     :: else -> skip
     fi
  fi
}

inline mpmc_try_recv() {
  atomic {                     /* claim: one step (see docs/model.md) */
  st = OK;
  saw_closed = 0;
  pos = mem[HEAD];
  do
  :: load(SEQ0 + pos % CAP, sq);                                 /* A5 */
     diff = sq - (2 * (pos / CAP) + 1);
     if
     :: diff == 0 ->
        atomic {                                                 /* head CAS */
          if
          :: mem[HEAD] == pos -> mem[HEAD] = pos + 1; take(pos % CAP); break
          :: else -> pos = mem[HEAD]
          fi
        }
     :: diff < 0 ->
        assert(diff >= -2);
        if
        :: saw_closed ->
           /* a claim before close (tail > pos) is still on its way */
           if :: mem[TAIL] != pos -> st = WB :: else -> st = CLOSED fi; break
        :: else ->
           if
           :: !closed -> st = WB; break
           :: else -> saw_closed = 1; pos = mem[HEAD]
           fi
        fi
     :: diff > 0 ->
        h = mem[HEAD];
        assert(h != pos);
        pos = h
     fi
  od
  };
  if
  :: st == OK ->
     atomic {
       store_rel(SEQ0 + pos % CAP, 2 * (pos / CAP) + 2);         /* R5 */
       wk = (waiters[NF] != 0)
     };
     if :: wk -> wake(NF, 1) :: else -> skip fi
  :: else -> skip
  fi
}

inline attempt(line) {
#if KIND == SPSC
  if
  :: line == NE -> spsc_try_recv()
  :: else -> spsc_try_send()
  fi;
  d_step { t = 0; h = 0; wk = 0 }      /* dead temporaries: fewer states */
#else
  if
  :: line == NE -> mpmc_try_recv()
  :: else -> mpmc_try_send()
  fi;
  d_step { t = 0; h = 0; wk = 0; pos = 0; sq = 0; diff = 0; saw_closed = 0 }
#endif
}

/* block(): the sleeping protocol of libipc/channel.cpp (spinning omitted) */
inline block(line) {
  attempt(line);
  if
  :: st != WB -> skip
  :: else ->
     do
     :: if
        :: timed -> st = TIMED_OUT; break     /* passed(deadline) */
        :: true -> skip
        fi;
        waiters[line]++;                      /* W1 */
        heavy_barrier();
        s_seq = seq[line];                    /* A3 */
        attempt(line);
        fr = WOKEN;
        if :: st == WB -> futex_wait(line) :: else -> skip fi;
        d_step { waiters[line]--; s_seq = 0 }  /* withdraw */
        if :: st == WB -> attempt(line) :: else -> skip fi;
        if
        :: st != WB -> fr = 0; break
        :: else ->
           if :: fr == TIMED_OUT -> st = TIMED_OUT; fr = 0; break :: else -> fr = 0 fi
        fi
     od
  fi
}

proctype worker(byte me; bool is_sender; byte prod; bool timed; bool mayquit)
{
  byte mybit = 1 << me;
  byte st, fr, s_seq, own, other, t, h, pos, sq, k, got;
  short diff;
  bool saw_closed, wk;

  if
  :: is_sender ->
     own = CAP;        /* attach(): the first send refreshes */
     k = 1;
     do
     :: k > NMSG -> break
     :: else ->
        block(NF);
        if
        :: st == OK -> sent_ok[prod]++; k++
        :: st == CLOSED -> break
        :: else -> skip          /* timed_out: try the same message again */
        fi
     od;
     atomic { flush(me); senders_done++ }   /* returning is a release */
  :: else ->
     do
     :: CLOSE == 0 && got == NS * NMSG -> break
     :: else ->
        block(NE);
        if
        :: st == CLOSED -> break
        :: st == TIMED_OUT && mayquit -> if :: break :: skip fi
        :: else -> skip
        fi
     od
  fi;
end_done:
  skip
}

proctype closer()
{
  byte me = 4;
  if
  :: CLOSE == 1 -> senders_done == NS
  :: else -> skip
  fi;
  closed = 1;                /* exchange(1, seq_cst) */
  wake(NE, ALL);
  wake(NF, ALL)
}

/* The store buffers drain at any moment. */
active proctype memory()
{
end:
  do
  :: atomic { sb_valid[0] -> flush(0) }
  :: atomic { sb_valid[1] -> flush(1) }
  :: atomic { sb_valid[2] -> flush(2) }
  :: atomic { sb_valid[3] -> flush(3) }
  od
}

init
{
  byte i, p, lap, slot, left;
  atomic {
    i = 0;
    do
    :: i < NS -> run worker(i, 1, i, 0, 0); i++
    :: else -> break
    od;
    i = 0;
    do
    :: i < NR -> run worker(2 + i, 0, 0, i >= NR - RTIMED, QUIT); i++
    :: else -> break
    od;
    if :: CLOSE != 0 -> run closer() :: else -> skip fi
  };
  /* every process reached its end (a sleeper that is never woken makes this
   * an invalid end state); then look at what is left in the ring */
  _nr_pr == 2;
  atomic {
    flush(0); flush(1); flush(2); flush(3);
    i = mem[HEAD];
    do
    :: i == mem[TAIL] -> break
    :: else ->
       slot = i % CAP;
       lap = i / CAP;
       assert(KIND == SPSC || mem[SEQ0 + slot] == 2 * lap + 1);
       assert(dk[slot] == next[dp[slot]] + 1);
       next[dp[slot]]++; left++; i++
    od;
    /* every successful send was received or is still buffered, exactly once */
    p = 0;
    do
    :: p < NS -> assert(next[p] == sent_ok[p]); p++
    :: else -> break
    od;
    /* receivers drained everything that was published before close */
    assert(left <= late);
    assert(CLOSE != 0 || left == 0)
  }
}
