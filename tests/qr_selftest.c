/*  tests/qr_selftest.c — runs the QR encoder's self-test (tools/qr.c) and,
 *  where zbarimg (Debian's zbar-tools) is installed, reads symbols back
 *  with that independent decoder.
 *
 *    qr_selftest [-v] [qr|zbar]
 *
 *  Prints "ok <name>" per test; a failed check aborts. The zbar test renders
 *  each symbol as a PBM image (4 pixels a module, the 4-module quiet zone)
 *  in a private temporary directory, runs `zbarimg --raw` on it and
 *  compares the text: every version at level M, 36..40 at L (the only
 *  ones L is used for), both modes and all eight masks. Without zbarimg
 *  it says so and passes, since the encoder's own read-back (qr) does not
 *  need it. Links only tools/qr.o and libsodium (for sodium_memzero).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../proto/selftest.h"
#include "../tools/qr.h"
#include "selftest_main.h"

#define S_SCALE 4u

/*  Writes qr as a binary PBM (1 = black) with the quiet zone. */
static void
s_write_pbm(const char *path, const qr_t *qr)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp);
    size_t side = (qr->size + 2u * QR_QUIET) * S_SCALE;
    fprintf(fp, "P4\n%zu %zu\n", side, side);
    uint8_t row[((QR_SIZE_MAX + 2u * QR_QUIET) * S_SCALE + 7u) / 8u];
    for (size_t py = 0; py < side; py++) {
        memset(row, 0, sizeof row);
        for (size_t px = 0; px < side; px++) {
            long x = (long)(px / S_SCALE) - (long)QR_QUIET;
            long y = (long)(py / S_SCALE) - (long)QR_QUIET;
            if (qr_module(qr, x, y)) {
                row[px / 8u] |= (uint8_t)(0x80u >> (px % 8u));
            }
        }
        CHECK(fwrite(row, 1, (side + 7u) / 8u, fp) == (side + 7u) / 8u);
    }
    CHECK(fclose(fp) == 0);
}

/*  Encodes text (qr_encode_text), has zbarimg read it and checks it gives
 *  want (the text as folded). */
/*  Which (level, version) pairs and which masks zbar has read. */
static bool s_seen[2][QR_VERSION_MAX + 1];
static bool s_seen_mask[8];

static void
s_zbar_one(bool verbose, const char *dir, const char *text, const char *want)
{
    qr_t qr;
    CHECK(qr_encode_text(text, &qr) == 0);
    char img[512], cmd[1024];
    snprintf(img, sizeof img, "%s/qr.pbm", dir);
    s_write_pbm(img, &qr);
    /* Only the QR reader; --raw prints the text and a newline. */
    /* zbarimg's stderr is noise here (it looks for D-Bus); a failure is
     * told below. */
    snprintf(cmd, sizeof cmd, "zbarimg -q --raw -Sdisable -Sqrcode.enable '%s' 2>/dev/null", img);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    static char got[QR_INPUT_MAX + 16];
    size_t n = fread(got, 1, sizeof got - 1, p);
    int status = pclose(p);
    got[n] = '\0';
    if (n > 0 && got[n - 1] == '\n') {
        got[--n] = '\0';
    }
    if (status != 0 || strcmp(got, want) != 0) {
        fprintf(stderr,
                "zbar: version %u-%c mask %u mode %u, %zu characters: status %d, read "
                "%zu characters\n",
                qr.version, qr.ecl == QR_ECL_M ? 'M' : 'L', qr.mask, qr.mode, strlen(want), status,
                n);
    }
    CHECK(status == 0 && strcmp(got, want) == 0);
    s_seen[qr.ecl][qr.version] = true;
    s_seen_mask[qr.mask] = true;
    if (verbose) {
        printf("   zbar read %zu characters: version %u-%c, mask %u, %s\n", n, qr.version,
               qr.ecl == QR_ECL_M ? 'M' : 'L', qr.mask,
               qr.mode == QR_MODE_ALNUM ? "alphanumeric" : "bytes");
    }
}

static void
s_zbar_test(bool verbose)
{
    if (system("command -v zbarimg >/dev/null 2>&1") != 0) {
        printf("   skip: zbarimg not installed (apt-get install zbar-tools)\n");
        return;
    }
    char dir[] = "/tmp/parley-qr-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static char text[QR_INPUT_MAX + 1], want[QR_INPUT_MAX + 1];
    /* Invite-like codes in steps smaller than any version's gain in
     * capacity, so every version at M is read (and 36..40 at L), and
     * byte-mode text of several sizes (an underscore keeps it out of
     * alphanumeric mode). */
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t len = 14; len <= 4296; len += len < 400 ? 15 : 61) {
        memcpy(text, "parley-invite:", 14);
        for (size_t i = 14; i < len; i++) {
            text[i] = b32[(i * 11u + len) % 32u];
        }
        text[len] = '\0';
        for (size_t i = 0; i <= len; i++) {
            want[i] = text[i] >= 'a' && text[i] <= 'z' ? (char)(text[i] - 32) : text[i];
        }
        s_zbar_one(verbose, dir, text, want);
    }
    for (size_t len = 1; len <= 2953; len += len < 200 ? 37 : 211) {
        for (size_t i = 0; i < len; i++) {
            text[i] = (char)("Parley_qr-test "[(i * 5u) % 15u]);
        }
        text[0] = '_';
        text[len] = '\0';
        s_zbar_one(verbose, dir, text, text);
    }
    /* Short texts of varied content until every mask has been chosen and
     * read (the sizes above happen to miss some). */
    for (size_t t = 0; t < 400; t++) {
        bool all = true;
        for (unsigned m = 0; m < 8; m++) {
            all = all && s_seen_mask[m];
        }
        if (all) {
            break;
        }
        size_t len = 5u + t % 40u;
        for (size_t i = 0; i < len; i++) {
            text[i] = b32[(i * (t % 13u + 1u) + t * 7u) % 32u];
            want[i] = text[i] >= 'a' && text[i] <= 'z' ? (char)(text[i] - 32) : text[i];
        }
        text[len] = want[len] = '\0';
        s_zbar_one(false, dir, text, want);
    }
    for (unsigned m = 0; m < 8; m++) {
        CHECK(s_seen_mask[m]);
    }
    for (unsigned v = QR_VERSION_MIN; v <= QR_VERSION_MAX; v++) {
        CHECK(s_seen[QR_ECL_M][v]);
    }
    char img[512];
    snprintf(img, sizeof img, "%s/qr.pbm", dir);
    CHECK(unlink(img) == 0 && rmdir(dir) == 0);
}

int
main(int argc, char **argv)
{
    static const selftest_t tests[] = {
        { "qr", qr_test },
        { "zbar", s_zbar_test },
    };
    return selftest_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
