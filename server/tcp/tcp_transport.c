/*
 * The NVMe/TCP transport as the core sees it: its ops table (transport.h)
 * and how its ports appear in the discovery log (NVMe/TCP 1.0, 4.1).
 */
#include <stdio.h>
#include <string.h>

#include <nvme/types.h>

#include "tcp.h"
#include "tcp_conn.h"

static bool is_wildcard(const char *a)
{
	return !a[0] || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0 ||
	       strcmp(a, "[::]") == 0 || strcmp(a, "*") == 0;
}

static uint8_t addr_family(const char *a)
{
	return strchr(a, ':') ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
}

/*
 * A listener on a wildcard address is reachable at the address the host
 * used, if that is of the listener's family; otherwise we cannot name one.
 */
static bool tcp_disc_entry(const struct nvme_port *port, const char *local_addr,
			   struct nvmf_disc_log_entry *e)
{
	bool wild = is_wildcard(port->traddr);
	uint8_t fam = port->adrfam ? port->adrfam : addr_family(local_addr);

	if (wild && fam != addr_family(local_addr))
		return false;
	e->trtype = NVMF_TRTYPE_TCP;
	e->adrfam = fam;
	e->treq = NVMF_TREQ_NOT_SPECIFIED; /* no secure channel on these ports */
	snprintf(e->traddr, sizeof(e->traddr), "%s", wild ? local_addr : port->traddr);
	snprintf(e->trsvcid, sizeof(e->trsvcid), "%s", port->trsvcid);
	e->tsas.tcp.sectype = port->ops->sectype;
	return true;
}

static void tcp_disconnect(void *conn)
{
	tcp_conn_close(conn);
}

const struct nvme_transport_ops tcp_transport = {
	.name = "tcp",
	.trtype = NVMF_TRTYPE_TCP,
	.sectype = NVMF_TCP_SECTYPE_NONE,
	.data_ptrs = NVME_XPORT_SGL,
	.fabrics = true,
	.admin_inline = TCP_ADMIN_INLINE,
	.io_inline = TCP_IO_INLINE,
	.mdts_bytes = TCP_MDTS_BYTES,
	/* Capsules: the 64-byte SQE plus in-capsule data; responses: the
	 * 16-byte CQE alone. One SGL descriptor, without alignment rules
	 * (bit 0), with offsets for in-capsule data (bit 20). */
	.ioccsz = (64u + TCP_IO_INLINE) / 16u,
	.iorcsz = 1,
	.msdbd = 1,
	.sgls = 0x1u | NVME_CTRL_SGLS_OFFSET,
	.queue_response = tcp_queue_response,
	.disconnect = tcp_disconnect,
	.drained = tcp_conn_drained,
	.disc_entry = tcp_disc_entry,
};
