/*
 * The table of injection rules (inject.h). A small array behind one mutex:
 * the I/O path only takes it while rules exist, and the control socket adds
 * and clears them one at a time.
 */
#include "inject.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "splitmix64.h"

int inject_armed_;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct inject_rule rules[INJECT_MAX_RULES];
static uint32_t nr_rules, last_id;

static const char *const op_names[] = { "read", "write", "append", "zmgmt", "report" };

_Static_assert(sizeof(op_names) / sizeof(op_names[0]) == 5 && INJECT_ALL_OPS == 0x1f,
	       "a name per operation bit");

const char *inject_op_name(uint32_t bit)
{
	if (!bit || (bit & (bit - 1)) || !(bit & INJECT_ALL_OPS))
		return NULL;
	return op_names[__builtin_ctz(bit)];
}

/* Under lock. */
static void set_armed(void)
{
	__atomic_store_n(&inject_armed_, (int)nr_rules, __ATOMIC_RELAXED);
}

int inject_add(const struct inject_rule *r)
{
	int id = -1;

	pthread_mutex_lock(&lock);
	if (nr_rules < INJECT_MAX_RULES) {
		struct inject_rule *n = &rules[nr_rules++];

		*n = *r;
		n->nqn[sizeof(n->nqn) - 1] = '\0';
		n->id = ++last_id;
		n->fired = 0;
		n->rng = r->seed;
		id = (int)n->id;
		set_armed();
	}
	pthread_mutex_unlock(&lock);
	return id;
}

/* Under lock: drop rules[i], keeping the others in the order they came. */
static void remove_at(uint32_t i)
{
	memmove(&rules[i], &rules[i + 1], (nr_rules - i - 1) * sizeof(rules[0]));
	nr_rules--;
}

uint32_t inject_clear(uint32_t id)
{
	uint32_t gone = 0;

	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < nr_rules;) {
		if (!id || rules[i].id == id) {
			remove_at(i);
			gone++;
		} else {
			i++;
		}
	}
	set_armed();
	pthread_mutex_unlock(&lock);
	return gone;
}

uint32_t inject_count(void)
{
	pthread_mutex_lock(&lock);
	uint32_t n = nr_rules;
	pthread_mutex_unlock(&lock);
	return n;
}

static bool overlaps(const struct inject_rule *r, uint64_t slba, uint64_t nlb)
{
	if (!r->nlb)
		return true;
	/* [slba, slba + nlb) and [r->slba, r->slba + r->nlb), without overflow */
	return slba < r->slba ? r->slba - slba < nlb : slba - r->slba < r->nlb;
}

/* Under lock: whether r fires on this matching command (its chance). */
static bool rolls(struct inject_rule *r)
{
	if (r->ppm >= INJECT_PPM)
		return true;
	return splitmix64_next(&r->rng) % INJECT_PPM < r->ppm;
}

bool inject_match(const char *nqn, uint32_t nsid, uint32_t op, uint64_t slba, uint64_t nlb,
		  struct inject_hit *hit)
{
	bool any = false;

	hit->status = 0;
	hit->delay_us = 0;
	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < nr_rules;) {
		struct inject_rule *r = &rules[i];

		/* A second status would be lost: a rule with one is not even
		 * tried once a status is chosen (its count stays). */
		if (!(r->ops & op) || r->nsid != nsid || !overlaps(r, slba, nlb) ||
		    (r->status && hit->status) || strcmp(r->nqn, nqn) != 0 || !rolls(r)) {
			i++;
			continue;
		}
		any = true;
		if (r->status)
			hit->status = r->status;
		if (r->delay_us)
			hit->delay_us = hit->delay_us + r->delay_us > INJECT_MAX_DELAY_US
					? INJECT_MAX_DELAY_US : hit->delay_us + r->delay_us;
		r->fired++;
		if (r->count && r->fired == r->count)
			remove_at(i);
		else
			i++;
	}
	set_armed();
	pthread_mutex_unlock(&lock);
	return any;
}

/* One rule in the syntax of the request that adds it (doc/fault-injection.md). */
static int print_rule(FILE *out, const struct inject_rule *r)
{
	int bad = fprintf(out, "#%u %s %u op=", r->id, r->nqn, r->nsid) < 0;

	for (uint32_t b = 1, first = 1; b <= INJECT_ALL_OPS; b <<= 1)
		if (r->ops & b) {
			bad |= fprintf(out, "%s%s", first ? "" : ",", inject_op_name(b)) < 0;
			first = 0;
		}
	if (r->nlb)
		bad |= fprintf(out, " lba=%llu+%llu", (unsigned long long)r->slba,
			       (unsigned long long)r->nlb) < 0;
	if (r->status)
		bad |= fprintf(out, " status=%u:%#x dnr=%s", (r->status >> 8) & 7, r->status & 0xff,
			       r->status & 0x4000 ? "yes" : "no") < 0;
	if (r->delay_us)
		bad |= fprintf(out, " delay=%uus", r->delay_us) < 0;
	if (r->ppm < INJECT_PPM)
		bad |= fprintf(out, " prob=0.%06u", r->ppm) < 0;
	if (r->count)
		bad |= fprintf(out, " left=%llu", (unsigned long long)(r->count - r->fired)) < 0;
	bad |= fprintf(out, " fired=%llu\n", (unsigned long long)r->fired) < 0;
	return bad ? -1 : 0;
}

int inject_print(FILE *out)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < nr_rules && !rc; i++)
		rc = print_rule(out, &rules[i]);
	pthread_mutex_unlock(&lock);
	return rc;
}
