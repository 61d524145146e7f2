/* backend.c - the backend object: an operation table and its context
 * (blobstore/sys/backend.h). */
#include <stdlib.h>

#include "storage.h"

int bs_backend_new(const struct bs_backend_ops *ops, void *ctx, uint32_t block_size,
		   struct bs_backend **out)
{
	if (!ops || !out || ops->version != BS_BACKEND_OPS_VERSION || !ops->read_at ||
	    !ops->write_at || !ops->sync || !ops->size || !ops->close) {
		if (ops && ops->close && ctx)
			ops->close(ctx);
		return bs__error(NULL, BS_NO_OFFSET, BS_EINVAL,
				 "backend table of an unknown version or without a required operation");
	}
	struct bs_backend *be = malloc(sizeof *be);
	if (!be) {
		ops->close(ctx);
		return bs__error(NULL, BS_NO_OFFSET, BS_ENOMEM, "out of memory");
	}
	be->ops = ops;
	be->ctx = ctx;
	be->block_size = block_size ? block_size : 1;
	*out = be;
	return BS_OK;
}

void *bs_backend_ctx(const struct bs_backend *be, const struct bs_backend_ops *ops)
{
	return be && be->ops == ops ? be->ctx : NULL;
}

void bs_backend_free(struct bs_backend *be)
{
	if (!be)
		return;
	be->ops->close(be->ctx);
	free(be);
}
