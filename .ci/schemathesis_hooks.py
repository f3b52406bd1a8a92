"""schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS)."""
import schemathesis


@schemathesis.serializer("application/pdf")
def pdf(ctx, value):
    """Signed copies are sent as raw bytes: generated values become bytes, half of them PDF-like."""
    if isinstance(value, bytes):
        return value
    data = str(value).encode("utf-8")
    return b"%PDF-1.4\n" + data if len(data) % 2 == 0 else data


@schemathesis.serializer("application/octet-stream")
def octet_stream(ctx, value):
    """Ticket attachments are sent as raw bytes: generated values become bytes, half of them PDF-like."""
    if isinstance(value, bytes):
        return value
    data = str(value).encode("utf-8")
    return b"%PDF-1.7\n" + data if len(data) % 2 == 0 else data
