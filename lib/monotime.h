/*
 * monotime: points in time on CLOCK_MONOTONIC, for deadlines.
 *
 * Timed waits (pthread_cond_timedwait on a condition variable set to
 * CLOCK_MONOTONIC, the hub's hub_wait) and timers take an absolute
 * struct timespec; these build and compare them, so a change of the wall
 * clock moves no deadline. monotime_add_ms works on a time of any clock.
 */
#ifndef RHTMX_MONOTIME_H
#define RHTMX_MONOTIME_H

#include <time.h>

/* Now, on CLOCK_MONOTONIC. */
struct timespec monotime_now(void);

/* t plus ms milliseconds (ms >= 0), normalised. */
struct timespec monotime_add_ms(struct timespec t, long long ms);

/* ms milliseconds from now, on CLOCK_MONOTONIC. */
struct timespec monotime_in_ms(long long ms);

/* 1 when a is earlier than b. */
int monotime_before(struct timespec a, struct timespec b);

#endif
