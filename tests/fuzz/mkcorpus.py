#!/usr/bin/env python3
"""mkcorpus.py — writes the seeds of fuzz_ring, fuzz_xsd and fuzz_ctl into tests/fuzz/corpus/.

One small valid input of each kind (and a few of the classic bad ones), in each target's input
format (see the header of tests/fuzz/fuzz_<target>.c).  fuzz_proto's seeds are encoded by
proto_encode() itself: tests/fuzz/seeds_proto.c (tests/fuzz/run.sh adds fresh ones every run).
Run it again when an input format changes:  tests/fuzz/mkcorpus.py [CORPUS_DIR]
"""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_ring: [flags][req_prod:32][ring page][guest pages 1..8] ---------------------------
PAGE = 4096
HDR = 64                        # the sring header before the entries
OP_READ, OP_WRITE, OP_FLUSH, OP_DISCARD, OP_INDIRECT = 0, 1, 3, 5, 6


def seg(gref, first, last):
    return struct.pack("<IBBH", gref, first, last, 0)


def rw64(op, rid, sector, segs):
    e = struct.pack("<BBHIQQ", op, len(segs), 0, 0, rid, sector) + b"".join(seg(*s) for s in segs)
    return e.ljust(112, b"\0")


def rw32(op, rid, sector, segs):
    e = struct.pack("<BBHQQ", op, len(segs), 0, rid, sector) + b"".join(seg(*s) for s in segs)
    return e.ljust(108, b"\0")


def discard64(rid, sector, nr):
    return struct.pack("<BBHIQQQ", OP_DISCARD, 0, 0, 0, rid, sector, nr).ljust(112, b"\0")


def indirect64(op, rid, sector, nsegs, grefs):
    e = struct.pack("<BBHIQQHH", OP_INDIRECT, op, nsegs, 0, rid, sector, 0, 0)
    e += b"".join(struct.pack("<I", g) for g in grefs)
    return e.ljust(112, b"\0")


def ring(entries, flags=0, pages=(), req_prod=None):
    page = bytearray(PAGE)
    size = 112 if not flags & 1 else 108
    for i, e in enumerate(entries):
        page[HDR + i * size:HDR + i * size + len(e)] = e
    rp = len(entries) if req_prod is None else req_prod
    data = struct.pack("<BI", flags, rp) + bytes(page)
    for p in pages:
        data += p.ljust(PAGE, b"\0")
    return data


segpage = b"".join(seg(3 + (i % 6), 0, 7) for i in range(16))     # 16 segments for an indirect read
write("ring", "read-1seg", ring([rw64(OP_READ, 1, 0, [(1, 0, 7)])]))
write("ring", "write-2seg", ring([rw64(OP_WRITE, 2, 8, [(1, 0, 7), (2, 0, 3)])]))
write("ring", "write-11seg", ring([rw64(OP_WRITE, 3, 64, [(1 + i % 8, 0, 7) for i in range(11)])]))
write("ring", "flush", ring([rw64(OP_FLUSH, 4, 0, [])]))
write("ring", "discard", ring([discard64(5, 16, 64)]))
write("ring", "indirect-read", ring([indirect64(OP_READ, 6, 128, 16, [2])], pages=[b"", segpage]))
write("ring", "batch", ring([rw64(OP_READ, 7, 0, [(1, 0, 7)]), rw64(OP_WRITE, 8, 8, [(2, 1, 6)]),
                             discard64(9, 32, 8), rw64(OP_FLUSH, 10, 0, [])]))
write("ring", "x86_32-read", ring([rw32(OP_READ, 11, 0, [(1, 0, 7)]), rw32(OP_WRITE, 12, 8, [(2, 0, 7)])], flags=1))
write("ring", "readonly-write", ring([rw64(OP_WRITE, 13, 0, [(1, 0, 7)])], flags=2))
write("ring", "bad-op", ring([rw64(9, 14, 0, [(1, 0, 7)])]))
write("ring", "bad-segs", ring([rw64(OP_READ, 15, 0, [(1, 7, 0)]), rw64(OP_READ, 16, 2047, [(1, 0, 7)])]))
write("ring", "overflow-prod", ring([rw64(OP_READ, 17, 0, [(1, 0, 7)])], req_prod=1000))

# ---- fuzz_xsd: chunks; framed one = [op|8][type][tx_id][len:16][body] ------------------------
(XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
 XS_TRANSACTION_END, XS_INTRODUCE, XS_RELEASE, XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM,
 XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR, XS_IS_DOMAIN_INTRODUCED) = range(18)
XS_RESET_WATCHES, XS_DIRECTORY_PART = 21, 22


def msg(client, typ, *args, tx=0, hangup=False, raw_body=None):
    body = raw_body if raw_body is not None else b"".join(a + b"\0" for a in args)
    return bytes([8 | client | (4 if hangup else 0), typ, tx]) + struct.pack("<H", len(body)) + body


def raw(client, data, hangup=False):
    return bytes([client | (4 if hangup else 0)]) + struct.pack("<H", len(data)) + data


def xs_hdr(typ, req, tx, ln):
    return struct.pack("<IIII", typ, req, tx, ln)


write("xsd", "read", msg(0, XS_READ, b"/local/domain/0/name"))
write("xsd", "write-read-rm", msg(0, XS_WRITE, raw_body=b"/a/b/c\0hello") + msg(0, XS_READ, b"/a/b/c")
      + msg(0, XS_MKDIR, b"/a/d") + msg(0, XS_DIRECTORY, b"/a") + msg(0, XS_RM, b"/a")
      + msg(0, XS_RM, b"/a/gone"))
write("xsd", "directory-part", msg(0, XS_WRITE, raw_body=b"/d/x1\0") + msg(0, XS_WRITE, raw_body=b"/d/x2\0")
      + msg(0, XS_DIRECTORY_PART, b"/d", b"0") + msg(0, XS_DIRECTORY_PART, b"/d", b"3"))
write("xsd", "perms", msg(0, XS_WRITE, raw_body=b"/p\0v") + msg(0, XS_SET_PERMS, b"/p", b"n0", b"r5", b"b7")
      + msg(0, XS_GET_PERMS, b"/p"))
write("xsd", "watch-fire", msg(1, XS_WATCH, b"/backend", b"tok1") + msg(0, XS_WRITE, raw_body=b"/backend/vbd/1/51712/state\x004")
      + msg(0, XS_RM, b"/backend/vbd") + msg(1, XS_UNWATCH, b"/backend", b"tok1")
      + msg(1, XS_WATCH, b"@introduceDomain", b"t2") + msg(1, XS_RESET_WATCHES, raw_body=b""))
write("xsd", "txn-commit", msg(0, XS_TRANSACTION_START, b"") + msg(0, XS_WRITE, tx=1, raw_body=b"/t/a\x001")
      + msg(0, XS_READ, b"/t/a", tx=1) + msg(0, XS_TRANSACTION_END, b"T", tx=1) + msg(0, XS_READ, b"/t/a"))
write("xsd", "txn-conflict", msg(0, XS_TRANSACTION_START, b"") + msg(1, XS_TRANSACTION_START, b"")
      + msg(0, XS_WRITE, tx=1, raw_body=b"/t/a\x001") + msg(1, XS_WRITE, tx=1, raw_body=b"/t/a\x002")
      + msg(0, XS_TRANSACTION_END, b"T", tx=1) + msg(1, XS_TRANSACTION_END, b"T", tx=1)
      + msg(2, XS_TRANSACTION_START, b"") + msg(2, XS_TRANSACTION_END, b"F", tx=1))
write("xsd", "guest-domid", msg(2, XS_CONTROL, b"memx-set-domid", b"5") + msg(2, XS_GET_DOMAIN_PATH, b"5")
      + msg(2, XS_WRITE, raw_body=b"device/vbd/51712/state\x001") + msg(2, XS_WATCH, b"device", b"fe")
      + msg(0, XS_WRITE, raw_body=b"/local/domain/5/device/vbd/51712/ring-ref\x008")
      + msg(2, XS_IS_DOMAIN_INTRODUCED, b"5"))
write("xsd", "hangup-mid-txn", msg(3, XS_WATCH, b"/h", b"w") + msg(3, XS_TRANSACTION_START, b"")
      + msg(3, XS_WRITE, tx=1, raw_body=b"/h/x\0y", hangup=True) + msg(0, XS_WRITE, raw_body=b"/h/z\0q"))
write("xsd", "bad-requests", msg(0, 99, b"x") + msg(0, XS_READ, raw_body=b"/no/nul")
      + msg(0, XS_READ, b"bad//path") + msg(0, XS_READ, b"/x", tx=77) + msg(0, XS_TRANSACTION_END, b"T")
      + msg(0, XS_WATCH, b"/only-path") + msg(0, XS_GET_DOMAIN_PATH, b"99999999999") + msg(0, XS_INTRODUCE, b"1", b"2", b"3"))
write("xsd", "raw-split", raw(0, xs_hdr(XS_READ, 7, 0, 6)[:10]) + raw(0, xs_hdr(XS_READ, 7, 0, 6)[10:] + b"/to")
      + raw(0, b"ol\0" + xs_hdr(XS_DIRECTORY, 8, 0, 2) + b"/\0"))
write("xsd", "raw-oversized", raw(1, xs_hdr(XS_WRITE, 1, 0, 5000) + b"/x\0" * 4) + msg(1, XS_READ, b"/tool"))

# ---- fuzz_ctl: [chunking][request lines] ---------------------------------------------------
ctl = {
    "status": b'{"cmd":"status"}\n',
    "volumes": b'{"cmd":"volumes"}\n',
    "stats": b'{"cmd":"stats"}\n',
    "devices": b'{"cmd":"devices"}\n',
    "pool": b'{"cmd":"pool"}\n',
    "pool-drain": b'{"cmd":"pool-drain","server":"127.0.0.1:7480"}\n'
                  b'{"cmd":"pool-drain","server":"127.0.0.1:7480","undo":true}\n'
                  b'{"cmd":"pool-drain","server":"nowhere:1"}\n{"cmd":"pool-drain","server":5}\n',
    "volume-delete": b'{"cmd":"volume-delete","name":"spare"}\n{"cmd":"volume-delete","name":"vm1-swap"}\n'
                     b'{"cmd":"volume-delete","name":"nope"}\n{"cmd":"volume-delete"}\n{"cmd":"volumes"}\n',
    "bad-json": b'{\n[]\n{"cmd":5}\nstatus\n{"cmd":"status"} trailing\n"cmd"\n{"cmd":"reboot"}\n\r\n\n',
    "nested": b'{"cmd":"stats","x":' + b"[" * 40 + b"]" * 40 + b"}\n",
    "numbers": b'{"cmd":"pool-drain","server":"127.0.0.1:7480","undo":1e999}\n{"cmd":"status","n":-9223372036854775809}\n',
    "crlf-many": b'{"cmd":"status"}\r\n{"cmd":"pool"}\r\n{"cmd":"devices"}\n',
    "nul": b'{"cmd":"status"}\0x\n{"cmd":"st\0atus"}\n',
    "long-line": b'{"cmd":"status","pad":"' + b"a" * 4200 + b'"}\n{"cmd":"pool"}\n',
}
for name, body in ctl.items():
    write("ctl", name, b"\0" + body)
write("ctl", "split-writes", b"\x01" + ctl["crlf-many"] + ctl["volume-delete"])
