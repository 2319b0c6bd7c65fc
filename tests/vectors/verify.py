#!/usr/bin/env python3
"""tests/vectors/verify.py — an independent re-implementation of the Parley v1
wire format (proto/SPEC.md) in Python, checked against envelope-v1.txt and,
when it sits beside it, roster-v1.txt (network events, SPEC §17).

It shares no code with proto/: if it agrees with the C self-test, the spec is
sufficient to build a compatible peer. Needs the `cryptography` package
(>= 44 for Argon2id); exits 0 with a note when it is missing. A file named
invite-*.txt is checked as invite code vectors (SPEC section 18), one named
network-*.txt as private-network frames and blinded mDNS records (section 19;
also checked beside envelope-v1.txt), one named channel-*.txt as channel ids,
chains, message and KEYS bodies (section 21; also checked beside it).

    python3 tests/vectors/verify.py [tests/vectors/envelope-v1.txt]
    python3 tests/vectors/verify.py tests/vectors/invite-v1.txt
    python3 tests/vectors/verify.py tests/vectors/network-v1.txt
    python3 tests/vectors/verify.py tests/vectors/channel-v1.txt
"""
import os
import base64
import hashlib
import os
import struct
import sys

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                                  X25519PublicKey)
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
except ImportError:
    print("skip: python3-cryptography not installed")
    sys.exit(0)

RAW = serialization.Encoding.Raw


def load(path):
    v = {}
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        name, value = line.split(" = ", 1)
        v[name] = value
    return v


def h(v, name):
    return bytes.fromhex(v[name])


def ed_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        RAW, serialization.PublicFormat.Raw)


def ed_sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def x_secret_from_seed(seed):
    return hashlib.sha512(seed).digest()[:32]  # X25519 clamps on use


def x_pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(
        RAW, serialization.PublicFormat.Raw)


def dh(sk, pk):
    out = X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
    assert out != bytes(32)
    return out


def node_id(pk):
    return base64.b32encode(pk).decode().lower().rstrip("=")


def fingerprint(pk):
    hx = hashlib.blake2b(pk, digest_size=20).hexdigest()
    return " ".join(hx[i:i + 4] for i in range(0, 40, 4))


def safety_half(pk):
    d = b""
    for _ in range(5200):
        d = hashlib.sha512(struct.pack(">H", 0) + pk + d).digest()
    return "".join("%05d" % (int.from_bytes(d[5 * c:5 * c + 5], "big") % 100000)
                   for c in range(6))


def kdf(key, subkey_id, ctx):
    """libsodium crypto_kdf_derive_from_key (BLAKE2b, salt = id LE, personal = ctx)."""
    return hashlib.blake2b(b"", digest_size=32, key=key,
                           salt=struct.pack("<Q", subkey_id) + bytes(8),
                           person=ctx.encode() + bytes(8)).digest()


def _rotl(x, n):
    return ((x << n) & 0xffffffff) | (x >> (32 - n))


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key)
             + struct.unpack("<4I", nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_decrypt(key, nonce24, ct, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).decrypt(bytes(4) + nonce24[16:], ct, ad)


def xchacha_encrypt(key, nonce24, pt, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(bytes(4) + nonce24[16:], pt, ad)


def pad(content):
    bucket = 64
    while bucket < len(content) + 1:
        bucket *= 2
    return content + b"\x80" + bytes(bucket - len(content) - 1)


def check(name, got, v, failures):
    want = v[name]
    got_s = got.hex() if isinstance(got, bytes) else str(got)
    if got_s != want:
        failures.append(name)
        print("MISMATCH %s\n  file: %s\n  py:   %s" % (name, want, got_s))


def str8(text):
    b = text.encode()
    assert len(b) < 256
    return bytes([len(b)]) + b


def net_envelope(seed, net, seq, ts, body):
    """A kind-2 envelope (SPEC §5, §17.1): scope = network id, plaintext body."""
    header = (b"\x01\x02" + ed_pub(seed) + net
              + struct.pack(">QQQI", seq, ts, 0, len(body)))
    signed = header + body
    env = signed + ed_sign(seed, b"parley/envelope/v1\x00" + signed)
    return env, hashlib.blake2b(env, digest_size=32).digest()


def check_roster(v, bad):
    """SPEC §17: network id, event bodies, the JOIN proof, envelopes and ids."""
    f_seed, j_seed = h(v, "founder_seed"), h(v, "joiner_seed")
    f_pk, j_pk = ed_pub(f_seed), ed_pub(j_seed)
    check("founder_pk", f_pk, v, bad)
    check("joiner_pk", j_pk, v, bad)
    i_seed = kdf(h(v, "invite_secret"), 1, "parleyiv")
    check("invite_seed", i_seed, v, bad)
    i_pk = ed_pub(i_seed)
    check("invite_pk", i_pk, v, bad)
    salt = h(v, "network_salt")
    net = hashlib.blake2b(b"parley/network/v1\x00" + f_pk + salt, digest_size=32).digest()
    check("network_id", net, v, bad)
    ts = int(v["ts_ms"])

    body = b"\x01\x01\x00" + salt + str8(v["network_name"]) + str8(v["founder_name"])
    check("body_create", body, v, bad)
    env, id_create = net_envelope(f_seed, net, 1, ts, body)
    check("envelope_create", env, v, bad)
    check("id_create", id_create, v, bad)

    body = (b"\x01\x02\x01" + id_create + i_pk + b"\x01"
            + struct.pack(">QH", int(v["invite_expires_ms"]), int(v["invite_uses"]))
            + str8(v["invite_label"]))
    check("body_invite", body, v, bad)
    env, id_invite = net_envelope(f_seed, net, 2, ts + 1, body)
    check("envelope_invite", env, v, bad)
    check("id_invite", id_invite, v, bad)

    name = str8(v["joiner_name"])
    proof = ed_sign(i_seed, b"parley/join/v1\x00" + net + j_pk + name)
    check("join_proof", proof, v, bad)
    body = b"\x01\x04\x01" + id_invite + i_pk + name + proof
    check("body_join", body, v, bad)
    env, id_join = net_envelope(j_seed, net, 1, ts + 2, body)
    check("envelope_join", env, v, bad)
    check("id_join", id_join, v, bad)

    body = b"\x01\x06\x01" + id_join + j_pk + str8(v["remove_reason"])
    check("body_remove", body, v, bad)
    env, id_remove = net_envelope(f_seed, net, 3, ts + 3, body)
    check("envelope_remove", env, v, bad)
    check("id_remove", id_remove, v, bad)
def invite_endpoint(ep, pk, inviter_pk):
    """One endpoint record of SPEC 18.2: flags | [pk] | IPv4 form or string."""
    flags, out = 0, b""
    if pk != inviter_pk:
        flags, out = 1, pk
    host, port = ep[len("tcp://"):].rsplit(":", 1)
    octets = host.split(".")
    if len(octets) == 4 and all(o.isdigit() and str(int(o)) == o and int(o) < 256
                                for o in octets):
        return bytes([flags | 2]) + out + bytes(int(o) for o in octets) + struct.pack(
            ">H", int(port))
    return bytes([flags]) + out + bytes([len(ep)]) + ep.encode()


def invite_code(v, endpoints):
    rec = (b"\x01" + h(v, "network_id") + h(v, "invite_secret")
           + struct.pack(">Q", int(v["expires_ms"])) + h(v, "inviter_pk")
           + bytes([len(endpoints)]))
    for ep, pk in endpoints:
        rec += invite_endpoint(ep, pk, h(v, "inviter_pk"))
    rec += hashlib.blake2b(b"parley/invite\x00" + rec, digest_size=32).digest()[:4]
    return "parley-invite:" + base64.b32encode(rec).decode().lower().rstrip("=")


def main_invite(path):
    v = load(path)
    bad = []
    secret = h(v, "invite_secret")
    seed = kdf(secret, 1, "parleyiv")
    check("invite_seed", seed, v, bad)
    check("invite_ed_pk", ed_pub(seed), v, bad)
    x_sk = bytearray(hashlib.sha512(seed).digest()[:32])
    x_sk[0] &= 248
    x_sk[31] = (x_sk[31] & 127) | 64
    check("invite_x_sk", bytes(x_sk), v, bad)
    check("invite_x_pk", x_pub(bytes(x_sk)), v, bad)
    inviter = h(v, "inviter_pk")
    eps = [(v["endpoint_1"], inviter), (v["endpoint_2"], h(v, "endpoint_2_pk")),
           (v["endpoint_3"], inviter)]
    for n in (1, 3):
        code = invite_code(v, eps[:n])
        check("code_%d" % n, code, v, bad)
        check("code_%d_len" % n, len(code), v, bad)
    if bad:
        print("FAIL: %d vector(s) differ: %s" % (len(bad), ", ".join(bad)))
        return 1
    print("ok: python re-implementation agrees with %s" % path)
    return 0


def check_network(v, bad):
    """SPEC section 19: NETKEY's signature and frame, the JOIN frames."""
    seed = h(v, "author_seed")
    pk = ed_pub(seed)
    check("author_pk", pk, v, bad)
    net, secret = h(v, "network_id"), h(v, "netkey_secret")
    epoch = struct.pack(">I", int(v["netkey_epoch"]))
    removals = h(v, "netkey_removals")
    assert len(removals) % 32 == 0 and removals[:32] < removals[32:64]
    binding = hashlib.blake2b(b"parley/epoch/v1\x00" + net + removals, digest_size=32).digest()
    check("netkey_binding", binding, v, bad)
    sig = ed_sign(seed, b"parley/netkey/v2\x00" + binding + epoch + secret)
    check("netkey_sig", sig, v, bad)
    check("frame_netkey", b"\x01\x0c" + net + epoch + secret + pk + sig, v, bad)
    check("frame_join_ask", b"\x01\x0b\x01" + net, v, bad)
    heads = h(v, "join_heads")
    assert len(heads) % 32 == 0 and heads[:32] < heads[32:64]
    check("frame_join_heads", b"\x01\x0b\x02" + bytes([len(heads) // 32]) + heads, v, bad)
    check("frame_join_added", b"\x01\x0b\x03\x00\x00", v, bad)
    check("frame_join_refused", b"\x01\x0b\x03\x01" + str8(v["join_reason"]), v, bad)

    key = kdf(h(v, "mdns_secret"), 1, "parleymd")
    check("mdns_key", key, v, bad)
    nonce = h(v, "mdns_nonce")
    sealed = nonce + xchacha_encrypt(key, nonce, pk, b"parley/mdns/v1\x00")
    check("mdns_txt_v", "v=1", v, bad)
    check("mdns_txt_b", "b=" + node_id(sealed), v, bad)
    assert xchacha_decrypt(key, nonce, sealed[24:], b"parley/mdns/v1\x00") == pk
    check("mdns_instance", "parley-" + node_id(h(v, "mdns_name_random")), v, bad)


def check_chan(v, bad):
    """SPEC section 21: ids, chains, a message body and a KEYS body."""
    be32 = lambda n: struct.pack(">I", n)
    b2 = lambda data, key=b"": hashlib.blake2b(data, digest_size=32, key=key).digest()
    creator, salt = h(v, "creator_pk"), h(v, "salt")
    cid = b2(b"parley/channel/v1\x00" + creator + salt)
    check("channel_id", cid, v, bad)
    check("msg_scope", b2(b"parley/channel-msgs/v1\x00" + cid), v, bad)
    epoch, key = int(v["epoch"]), h(v, "epoch_key")
    key_id = b2(b"parley/chan-keyid/v1\x00" + cid + be32(epoch) + key)[:8]
    check("key_id", key_id, v, bad)
    ck = b2(b"parley/chan-chain/v1\x00" + cid + be32(epoch) + h(v, "sender_pk"), key)
    check("chain_key_0", ck, v, bad)
    for i in range(3):
        mk = kdf(ck, 1, "prlycmsg")
        ck = kdf(ck, 2, "prlycchn")
        check("message_key_%d" % i, mk, v, bad)
    check("chain_key_3", ck, v, bad)
    # The body: version | epoch | key_id | counter | nonce | sealed padded content.
    head = b"\x01" + be32(epoch) + key_id + be32(2) + h(v, "msg_nonce")
    env_header = h(v, "env_header")
    body = head + xchacha_encrypt(mk, h(v, "msg_nonce"), pad(h(v, "content")), env_header + head)
    check("msg_body", body, v, bad)
    check("binding", b2(b"parley/chan-epoch/v1\x00" + cid + h(v, "binding_events")), v, bad)
    # KEYS: the fixed part, then one entry per recipient.
    binding, nonce = h(v, "keys_binding"), h(v, "keys_nonce")
    out = (b"\x01" + be32(epoch) + key_id + binding + nonce + b"\x00\x01"
           + struct.pack(">H", 2))
    for e, (spk_id, day) in enumerate(((11, 102), (12, 103))):
        rcpt = h(v, "entry%d_recipient" % e)
        ek = b2(b"parley/chan-key/v1\x00" + cid + be32(epoch) + key_id + nonce + rcpt,
                h(v, "entry%d_day_key" % e))
        sealed = ChaCha20Poly1305(ek).encrypt(bytes(12), key, cid + be32(epoch) + key_id + binding)
        out += rcpt + h(v, "entry%d_ek_pub" % e) + struct.pack(">III", spk_id, 100, day) + sealed
    check("keys_body", out, v, bad)


def main_one(path, check_fn):
    """One vectors file checked alone by check_fn(v, bad)."""
    v = load(path)
    bad = []
    check_fn(v, bad)
    if bad:
        print("FAIL: %d vector(s) differ: %s" % (len(bad), ", ".join(bad)))
        return 1
    print("ok: python re-implementation agrees with %s" % path)
    return 0


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/vectors/envelope-v1.txt"
    if os.path.basename(path).startswith("invite-"):
        return main_invite(path)
    if os.path.basename(path).startswith("network-"):
        return main_one(path, check_network)
    if os.path.basename(path).startswith("channel-"):
        return main_one(path, check_chan)
    v = load(path)
    bad = []
    seed_a, seed_b = h(v, "seed_a"), h(v, "seed_b")
    ed_a, ed_b = ed_pub(seed_a), ed_pub(seed_b)
    xs_a, xs_b = x_secret_from_seed(seed_a), x_secret_from_seed(seed_b)
    for tag, ed, xs in (("a", ed_a, xs_a), ("b", ed_b, xs_b)):
        check("ed_pk_" + tag, ed, v, bad)
        check("x_pk_" + tag, x_pub(xs), v, bad)
        check("node_id_" + tag, node_id(ed), v, bad)
        check("short_id_" + tag, node_id(ed)[:8], v, bad)
        check("fingerprint_" + tag, fingerprint(ed), v, bad)
    halves = sorted([safety_half(ed_a), safety_half(ed_b)])
    check("safety_number_ab", halves[0] + halves[1], v, bad)

    check("keyfile_plain_a", b"PRLYKEY1" + b"\x00" + ed_a + seed_a, v, bad)
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        salt, nonce = h(v, "keyfile_salt"), h(v, "keyfile_nonce")
        ops, mem = int(v["keyfile_opslimit"]), int(v["keyfile_memlimit"])
        key = Argon2id(salt=salt, length=32, iterations=ops, lanes=1,
                       memory_cost=mem // 1024).derive(v["keyfile_passphrase"].encode())
        head = b"PRLYKEY1" + b"\x01" + ed_a + salt + struct.pack(">QQ", ops, mem) + nonce
        check("keyfile_sealed_a", head + xchacha_encrypt(key, nonce, seed_a, head), v, bad)
    except ImportError:
        print("note: no Argon2id in this cryptography; sealed key file not checked")

    spk_sk = h(v, "spk_secret_b")
    spk_pub = x_pub(spk_sk)
    check("spk_pub_b", spk_pub, v, bad)
    signed = (b"\x01" + ed_b + struct.pack(">I", int(v["spk_id_b"])) + spk_pub
              + struct.pack(">Q", int(v["spk_created_ms"])))
    bundle = signed + ed_sign(seed_b, b"parley/prekey/v1\x00" + signed)
    check("prekey_bundle_b", bundle, v, bad)

    lo, hi = sorted([ed_a, ed_b])
    scope = hashlib.blake2b(b"parley/dm-scope/v1" + lo + hi, digest_size=32,
                            key=dh(xs_a, x_pub(xs_b))).digest()
    check("dm_scope_ab", scope, v, bad)

    ek_sk = h(v, "ek_secret_a")
    ek_pub = x_pub(ek_sk)
    check("ek_pub_a", ek_pub, v, bad)
    spk_id = int(v["spk_id_b"])
    root = hashlib.blake2b(b"parley/x3dh/v1" + dh(xs_a, spk_pub) + dh(ek_sk, x_pub(xs_b))
                           + dh(ek_sk, spk_pub) + ed_a + ed_b + ek_pub
                           + struct.pack(">I", spk_id), digest_size=32).digest()
    check("x3dh_root", root, v, bad)
    # The responder's view gives the same root.
    root_b = hashlib.blake2b(b"parley/x3dh/v1" + dh(spk_sk, x_pub(xs_a)) + dh(xs_b, ek_pub)
                             + dh(spk_sk, ek_pub) + ed_a + ed_b + ek_pub
                             + struct.pack(">I", spk_id), digest_size=32).digest()
    assert root_b == root
    day0, day, seq = int(v["day0"]), int(v["day"]), int(v["seq"])
    key = root
    for _ in range(day - day0):
        key = kdf(key, 1, "prlyday_")
    check("day_key", key, v, bad)
    mk = kdf(key, seq, "prlymsg_")
    check("message_key", mk, v, bad)

    content = b"\x01" + v["text"].encode()
    check("content", content, v, bad)
    padded = pad(content)
    nonce = h(v, "dm_nonce")
    dm_head = ek_pub + struct.pack(">III", spk_id, day0, day) + nonce
    body_len = len(dm_head) + len(padded) + 16
    header = (b"\x01\x01" + ed_a + scope
              + struct.pack(">QQQI", seq, int(v["ts_ms"]), int(v["expires_ms"]), body_len))
    body = dm_head + xchacha_encrypt(mk, nonce, padded, header + dm_head)
    signed = header + body
    env = signed + ed_sign(seed_a, b"parley/envelope/v1\x00" + signed)
    check("envelope", env, v, bad)
    env_id = hashlib.blake2b(env, digest_size=32).digest()
    check("envelope_id", env_id, v, bad)
    assert xchacha_decrypt(mk, nonce, body[68:], header + dm_head) == padded

    tag, ep = v["hello_tag"].encode(), v["hello_endpoint"].encode()
    check("frame_hello", b"\x01\x01" + ed_a + struct.pack(">IB", 1, len(tag)) + tag
          + bytes([1, len(ep)]) + ep, v, bad)
    check("frame_prekey", b"\x01\x02" + bundle, v, bad)
    check("frame_envelopes", b"\x01\x03" + struct.pack(">HI", 1, len(env)) + env, v, bad)
    check("frame_ack", b"\x01\x04" + struct.pack(">H", 1) + env_id, v, bad)
    check("frame_ping", b"\x01\x05" + struct.pack(">Q", 0x0102030405060708), v, bad)
    check("frame_pong", b"\x01\x06" + struct.pack(">Q", 0x0102030405060708), v, bad)
    check("frame_bye", b"\x01\x07\x01", v, bad)

    roster_path = os.path.join(os.path.dirname(path), "roster-v1.txt")
    if os.path.exists(roster_path):
        check_roster(load(roster_path), bad)
        path += " and " + roster_path
    network_path = os.path.join(os.path.dirname(path.split(" and ")[0]), "network-v1.txt")
    if os.path.exists(network_path):
        check_network(load(network_path), bad)
        path += " and " + network_path
    chan_path = os.path.join(os.path.dirname(path.split(" and ")[0]), "channel-v1.txt")
    if os.path.exists(chan_path):
        check_chan(load(chan_path), bad)
        path += " and " + chan_path

    if bad:
        print("FAIL: %d vector(s) differ: %s" % (len(bad), ", ".join(bad)))
        return 1
    print("ok: python re-implementation agrees with %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
