/* ns_fixture.h */
#include "ns_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct ns_fixture *ns_fixture_new(const char *tag, uint32_t nz, uint32_t zlbas, bool zoned)
{
	struct ns_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/znstgt-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(f->dir));
	struct ns_config *c = &f->cfg;
	c->nsid = 1;
	snprintf(c->path, sizeof(c->path), "%s/ns1", f->dir);
	c->lba_size = NS_FIXTURE_BS;
	c->zoned = zoned;
	c->zone_size = (uint64_t)zlbas * NS_FIXTURE_BS;
	c->zone_capacity = c->zone_size;
	c->size = nz * c->zone_size;
	c->zone_append_max = 8 * NS_FIXTURE_BS;
	c->journal_size = 1 << 20;
	return f;
}

void ns_fixture_open(struct ns_fixture *f, bool format)
{
	char err[512] = "";

	if (ns_open(&f->cfg, format, &f->ns, err, sizeof(err)))
		fail_msg("ns_open: %s", err);
}

void ns_fixture_free(struct ns_fixture *f)
{
	char cmd[128];

	if (f->ns)
		ns_close(f->ns);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
}
