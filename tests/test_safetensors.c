/* safetensors reader/writer, sharded directories and the tensor inventory check.
 * Corrupt files are built in memory or in a temp dir; each must fail with its own message. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/inventory.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* u64 header length + header + data_len bytes of data (byte i = i & 0xff). Caller frees. */
static unsigned char *make_image(const char *header, uint64_t declared_len, size_t data_len,
                                 size_t *out_len) {
    size_t hl = strlen(header);
    *out_len = 8 + hl + data_len;
    unsigned char *b = malloc(*out_len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(declared_len >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        b[8 + hl + i] = (unsigned char)i;
    return b;
}

/* Opens an image with a correct header length; returns rc, fills e. */
static int open_header(const char *header, size_t data_len, hd_error *e) {
    size_t len;
    unsigned char *b = make_image(header, strlen(header), data_len, &len);
    hd_safetensors st;
    int rc = hd_st_open_buffer(&st, b, len, "x.safetensors", e);
    hd_st_close(&st);
    free(b);
    return rc;
}

/* Expects failure with a message containing `want` and naming the file. */
static void expect_header_error(const char *header, size_t data_len, const char *want) {
    hd_error e = {0};
    int rc = open_header(header, data_len, &e);
    CHECKF(rc == HD_EFORMAT, "rc %d for header %s", rc, header);
    CHECKF(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    CHECKF(strstr(e.msg, "x.safetensors") != NULL, "message '%s' lacks the file name", e.msg);
    CHECKF(strchr(e.msg, '\n') == NULL, "message is not one line: %s", e.msg);
}

/* ---- header validation ------------------------------------------------------------------- */

static void test_truncated_file_is_rejected(void) {
    hd_error e = {0};
    hd_safetensors st;
    unsigned char b[5] = {1, 0, 0, 0, 0};
    CHECK(hd_st_open_buffer(&st, b, sizeof b, "x.safetensors", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "shorter than the 8-byte") != NULL);
    CHECK(st.n_tensors == 0 && st.tensors == NULL);
    hd_st_close(&st);
}

static void test_zero_header_length_is_rejected(void) {
    hd_error e = {0};
    size_t len;
    unsigned char *b = make_image("{}", 0, 0, &len);
    hd_safetensors st;
    CHECK(hd_st_open_buffer(&st, b, len, "x.safetensors", &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "header length is 0") != NULL);
    free(b);
}

static void test_header_length_beyond_file_is_rejected(void) {
    hd_error e = {0};
    size_t len;
    unsigned char *b = make_image("{}", 1000, 0, &len);
    hd_safetensors st;
    CHECK(hd_st_open_buffer(&st, b, len, "x.safetensors", &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "runs beyond the end") != NULL, "%s", e.msg);
    free(b);
}

static void test_header_length_over_limit_is_rejected(void) {
    hd_error e = {0};
    size_t len;
    unsigned char *b = make_image("{}", (uint64_t)HD_ST_MAX_HEADER + 1, 0, &len);
    hd_safetensors st;
    CHECK(hd_st_open_buffer(&st, b, len, "x.safetensors", &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "exceeds") != NULL, "%s", e.msg);
    free(b);
    /* a length near 2^64 must not wrap any arithmetic */
    b = make_image("{}", UINT64_MAX - 3, 0, &len);
    CHECK(hd_st_open_buffer(&st, b, len, "x.safetensors", &e) == HD_EFORMAT);
    free(b);
}

static void test_bad_json_is_rejected(void) {
    expect_header_error("{\"a\": ", 0, "not valid JSON");
    expect_header_error("[1, 2]", 0, "not a JSON object");
    /* a name given twice in one header is ambiguous */
    expect_header_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                        2, "not valid JSON");
}

static void test_bad_entries_are_rejected_each_with_its_own_message(void) {
    static const struct {
        const char *header, *want;
    } cases[] = {
        {"{\"t\": 5}", "entry is not an object"},
        {"{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "missing 'dtype'"},
        {"{\"t\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", "'dtype' is not a string"},
        {"{\"t\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unknown dtype"},
        {"{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "missing 'shape'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}",
         "'shape' is not an array"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "is not an integer"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "is negative"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
         "dims, more than"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", "missing 'data_offsets'"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "is not two integers"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}",
         "'data_offsets' [-4, 0] is negative"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "begin 8 > end 4"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
         "data_offsets span 4 bytes but F32 x shape needs 8"},
        {"{\"t\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
         "element count of the shape overflows"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[4,20]}}", "beyond the 16-byte"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "overlap tensor"},
        {"{\"__metadata__\": [1]}", "'__metadata__' is not an object"},
        {"{\"__metadata__\": {\"k\": 1}}", "__metadata__ value 'k' is not a string"},
    };
    int n = (int)(sizeof cases / sizeof *cases);
    char msgs[sizeof cases / sizeof *cases][1024];
    for (int i = 0; i < n; i++) {
        expect_header_error(cases[i].header, 16, cases[i].want);
        hd_error e = {0};
        open_header(cases[i].header, 16, &e);
        snprintf(msgs[i], sizeof msgs[i], "%s", e.msg);
        if (strstr(cases[i].header, "\"t\"") && strcmp(cases[i].want, "entry is not an object"))
            CHECKF(strstr(e.msg, "tensor 't'") != NULL, "message '%s' lacks the tensor", e.msg);
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            CHECKF(strcmp(msgs[i], msgs[j]) != 0, "cases %d and %d share '%s'", i, j, msgs[i]);
}

static void test_overlap_is_found_regardless_of_header_order(void) {
    /* the overlapping pair is not adjacent in header order and a long range hides behind */
    expect_header_error("{\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]},"
                        "\"a\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[0,10]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[12,14]}}",
                        16, "overlap");
}

/* ---- valid files --------------------------------------------------------------------------- */

static void test_valid_header_parses_sorted_and_findable(void) {
    /* data: [0,4) F32 "w" unaligned later via offsets; empty and scalar tensors are legal */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"zeta\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                    "\"alpha\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[4,12]},"
                    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[12,12]},"
                    "\"scalar\":{\"dtype\":\"F8_E4M3\",\"shape\":[],\"data_offsets\":[12,13]},"
                    "\"e5\":{\"dtype\":\"F8_E5M2\",\"shape\":[1],\"data_offsets\":[13,14]}}";
    size_t len;
    unsigned char *b = make_image(h, strlen(h), 16, &len);
    hd_safetensors st;
    hd_error e = {0};
    CHECKF(hd_st_open_buffer(&st, b, len, "ok.safetensors", &e) == 0, "%s", e.msg);
    CHECK(st.n_tensors == 5);
    for (int i = 1; i < st.n_tensors; i++)
        CHECK(strcmp(st.tensors[i - 1].name, st.tensors[i].name) < 0);
    const hd_st_tensor *t = hd_st_find(&st, "alpha");
    CHECK(t && t->dtype == HD_BF16 && t->ndim == 2 && t->numel == 4 && t->nbytes == 8);
    CHECK(t && t->data == b + 8 + strlen(h) + 4);
    t = hd_st_find(&st, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1 && t->dtype == HD_F8_E4M3);
    t = hd_st_find(&st, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0);
    CHECK(hd_st_find(&st, "zeta") != NULL);
    CHECK(hd_st_find(&st, "e5") != NULL);
    CHECK(hd_st_find(&st, "nope") == NULL);
    CHECK(hd_st_find(&st, "__metadata__") == NULL);
    int64_t iv[4];
    CHECK(hd_st_read_i64(hd_st_find(&st, "zeta"), iv, 4, &e) == 0);
    CHECK(iv[0] == 0 && iv[3] == 3);
    hd_st_close(&st);
    CHECK(st.n_tensors == 0 && st.files == NULL);
    free(b);
}

static void test_typed_reads_convert_and_check_counts(void) {
    /* header of odd length so every tensor is unaligned in memory */
    float f32[3] = {1.5f, -2.0f, 3.25f};
    double f64[2] = {0.1, -7.0};
    uint16_t bf[2] = {hd_f32_to_bf16(0.5f), hd_f32_to_bf16(-4.0f)};
    uint16_t f16[2] = {hd_f32_to_f16(0.25f), hd_f32_to_f16(-1.0f)};
    int32_t i32[2] = {-5, 7};
    uint8_t bl[2] = {0, 3};
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[12,28]},"
                    "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[28,32]},"
                    "\"d\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[32,36]},"
                    "\"e\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[36,44]},"
                    "\"f\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[44,46]}} ";
    size_t hl = strlen(h);
    CHECK(hl % 2 == 1);
    size_t len;
    unsigned char *b = make_image(h, hl, 46, &len);
    unsigned char *d = b + 8 + hl;
    memcpy(d, f32, 12);
    memcpy(d + 12, f64, 16);
    memcpy(d + 28, bf, 4);
    memcpy(d + 32, f16, 4);
    memcpy(d + 36, i32, 8);
    memcpy(d + 44, bl, 2);
    hd_safetensors st;
    hd_error e = {0};
    CHECKF(hd_st_open_buffer(&st, b, len, "typed", &e) == 0, "%s", e.msg);
    float fo[3];
    double dout[3];
    int64_t io[3];
    CHECK(hd_st_read_f32(hd_st_find(&st, "a"), fo, 3, &e) == 0 && fo[2] == 3.25f);
    CHECK(hd_st_read_f32(hd_st_find(&st, "b"), fo, 2, &e) == 0 && fo[0] == 0.1f);
    CHECK(hd_st_read_f64(hd_st_find(&st, "b"), dout, 2, &e) == 0 && dout[0] == 0.1);
    CHECK(hd_st_read_f64(hd_st_find(&st, "c"), dout, 2, &e) == 0 && dout[1] == -4.0);
    CHECK(hd_st_read_f32(hd_st_find(&st, "d"), fo, 2, &e) == 0 && fo[0] == 0.25f);
    CHECK(hd_st_read_i64(hd_st_find(&st, "e"), io, 2, &e) == 0 && io[0] == -5 && io[1] == 7);
    CHECK(hd_st_read_i64(hd_st_find(&st, "f"), io, 2, &e) == 0 && io[0] == 0 && io[1] == 1);
    /* wrong count, wrong kind */
    CHECK(hd_st_read_f32(hd_st_find(&st, "a"), fo, 2, &e) == HD_EMISMATCH);
    CHECK(strstr(e.msg, "tensor 'a'") != NULL);
    CHECK(hd_st_read_f32(hd_st_find(&st, "e"), fo, 2, &e) == HD_EUNSUPPORTED);
    CHECK(hd_st_read_i64(hd_st_find(&st, "a"), io, 3, &e) == HD_EUNSUPPORTED);
    CHECK(strstr(e.msg, "tensor 'a'") != NULL);
    hd_st_close(&st);
    free(b);
}

/* ---- writer --------------------------------------------------------------------------------- */

static int fill_ramp(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                     hd_error *e) {
    (void)e;
    (void)ctx;
    (void)it;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)buf)[i] = (unsigned char)((off + i) * 7);
    return 0;
}

static void test_write_round_trip(void) {
    char dir[512], path[600], tmp[640];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float w[6] = {1, 2, 3, 4, 5, -6};
    uint16_t h[3] = {hd_f32_to_bf16(1.0f), hd_f32_to_bf16(0.5f), hd_f32_to_bf16(-2.0f)};
    hd_st_write_item items[4] = {
        {.name = "odd.bf16", .dtype = HD_BF16, .ndim = 1, .shape = {3}, .data = h},
        {.name = "w", .dtype = HD_F32, .ndim = 2, .shape = {2, 3}, .data = w},
        /* big enough to span several fill chunks */
        {.name = "big", .dtype = HD_U8, .ndim = 2, .shape = {3, 3000001}, .fill = fill_ramp},
        {.name = "none", .dtype = HD_F32, .ndim = 2, .shape = {0, 4}},
    };
    hd_error e = {0};
    CHECKF(hd_st_write(path, items, 4, &e) == 0, "%s", e.msg);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    size_t flen;
    unsigned char *raw = (unsigned char *)hd_test_read_file(path, &flen);
    CHECK(raw != NULL);
    uint64_t hl = 0;
    for (int i = 7; raw && i >= 0; i--)
        hl = (hl << 8) | raw[i];
    CHECK(hl % 8 == 0);
    free(raw);

    hd_safetensors st;
    CHECKF(hd_st_open(&st, path, &e) == 0, "%s", e.msg);
    CHECK(st.n_tensors == 4 && st.n_files == 1 && st.files[0].map != NULL);
    float fo[6];
    CHECK(hd_st_read_f32(hd_st_find(&st, "w"), fo, 6, &e) == 0 && !memcmp(fo, w, sizeof w));
    CHECK(hd_st_read_f32(hd_st_find(&st, "odd.bf16"), fo, 3, &e) == 0 && fo[2] == -2.0f);
    const hd_st_tensor *big = hd_st_find(&st, "big");
    int ok = big && big->nbytes == 9000003;
    for (uint64_t i = 0; ok && i < big->nbytes; i += 4099)
        ok = ((const unsigned char *)big->data)[i] == (unsigned char)(i * 7);
    CHECK(ok);
    CHECK(big && ((const unsigned char *)big->data)[9000002] == (unsigned char)(9000002u * 7));
    CHECK(hd_st_find(&st, "none") && hd_st_find(&st, "none")->numel == 0);
    hd_st_close(&st);
}

static void test_write_rejects_bad_items_and_leaves_no_file(void) {
    char dir[512], path[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    float v = 1;
    hd_st_write_item dup[2] = {
        {.name = "a", .dtype = HD_F32, .ndim = 1, .shape = {1}, .data = &v},
        {.name = "a", .dtype = HD_F32, .ndim = 1, .shape = {1}, .data = &v},
    };
    hd_error e = {0};
    CHECK(hd_st_write(path, dup, 2, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "tensor 'a'") && strstr(e.msg, "twice"));
    hd_st_write_item nodata = {.name = "x", .dtype = HD_F32, .ndim = 1, .shape = {2}};
    CHECK(hd_st_write(path, &nodata, 1, &e) == HD_EINVAL);
    CHECK(access(path, F_OK) != 0);
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
}

static void test_open_missing_file_is_an_io_error(void) {
    hd_safetensors st;
    hd_error e = {0};
    CHECK(hd_st_open(&st, "/nonexistent/dir/m.safetensors", &e) == HD_EIO);
    CHECK(strstr(e.msg, "/nonexistent/dir/m.safetensors") != NULL);
    char dir[512];
    hd_test_tmpdir(dir, sizeof dir);
    CHECK(hd_st_open_dir(&st, dir, &e) == HD_EIO);
    CHECK(strstr(e.msg, "no model.safetensors") != NULL);
}

static void test_truncated_file_on_disk_is_rejected(void) {
    char dir[512], path[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    CHECK(hd_test_write_file(path, "\x10\0\0", 3) == 0);
    hd_safetensors st;
    hd_error e = {0};
    CHECK(hd_st_open(&st, path, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "shorter than the 8-byte") && strstr(e.msg, path));
    /* a real file cut in the middle of its data */
    float w[4] = {1, 2, 3, 4};
    hd_st_write_item it = {.name = "w", .dtype = HD_F32, .ndim = 1, .shape = {4}, .data = w};
    CHECK(hd_st_write(path, &it, 1, &e) == 0);
    size_t len;
    char *raw = hd_test_read_file(path, &len);
    CHECK(raw && hd_test_write_file(path, raw, len - 3) == 0);
    free(raw);
    CHECK(hd_st_open(&st, path, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "tensor 'w'") && strstr(e.msg, "beyond"), "%s", e.msg);
}

/* ---- sharded directories ------------------------------------------------------------------- */

static float shard_vals[4] = {1, 2, 3, 4};

static void write_shard(const char *dir, const char *file, const char *const *names, int n) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    hd_st_write_item items[4];
    memset(items, 0, sizeof items);
    for (int i = 0; i < n; i++)
        items[i] = (hd_st_write_item){
            .name = names[i], .dtype = HD_F32, .ndim = 1, .shape = {4}, .data = shard_vals};
    hd_error e = {0};
    CHECKF(hd_st_write(path, items, n, &e) == 0, "%s", e.msg);
}

static void write_index(const char *dir, const char *json) {
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK(hd_test_write_file(path, json, strlen(json)) == 0);
}

/* Opens dir; expects rc and a message containing want (if non-NULL). */
static void expect_dir(const char *dir, int want_rc, const char *want) {
    hd_safetensors st;
    hd_error e = {0};
    int rc = hd_st_open_dir(&st, dir, &e);
    CHECKF(rc == want_rc, "rc %d (%s)", rc, e.msg);
    if (want) CHECKF(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    hd_st_close(&st);
}

static void test_sharded_directory_loads(void) {
    char dir[512];
    hd_test_tmpdir(dir, sizeof dir);
    const char *s1[] = {"a", "b"}, *s2[] = {"c"};
    write_shard(dir, "m-1.safetensors", s1, 2);
    write_shard(dir, "m-2.safetensors", s2, 1);
    write_index(dir,
                "{\"metadata\":{\"total_size\":48},\"weight_map\":{"
                "\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\",\"c\":\"m-2.safetensors\"}}");
    hd_safetensors st;
    hd_error e = {0};
    CHECKF(hd_st_open_dir(&st, dir, &e) == 0, "%s", e.msg);
    CHECK(st.n_files == 2 && st.n_tensors == 3);
    const hd_st_tensor *c = hd_st_find(&st, "c");
    CHECK(c && strstr(st.files[c->file].path, "m-2.safetensors"));
    float v[4];
    CHECK(c && hd_st_read_f32(c, v, 4, &e) == 0 && v[3] == 4);
    hd_st_close(&st);
}

static void test_sharded_index_errors_are_distinct(void) {
    char dir[512];
    hd_test_tmpdir(dir, sizeof dir);
    const char *s1[] = {"a", "b"}, *s2[] = {"c"}, *s3[] = {"a"};
    write_shard(dir, "m-1.safetensors", s1, 2);
    write_shard(dir, "m-2.safetensors", s2, 1);
    write_shard(dir, "m-3.safetensors", s3, 1); /* "a" again, for the duplicate case */

    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\","
                     "\"c\":\"m-9.safetensors\"}}");
    expect_dir(dir, HD_EIO, "shard 'm-9.safetensors' named in the index does not exist");

    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-2.safetensors\","
                     "\"c\":\"m-2.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT,
               "tensor 'b' is in shard m-1.safetensors but the index maps it to "
               "m-2.safetensors");

    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"c\":\"m-2.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT, "tensor 'b' in shard m-1.safetensors is not listed in the index");

    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\","
                     "\"c\":\"m-2.safetensors\",\"d\":\"m-2.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT, "tensor 'd' listed in the index is missing from m-2.safetensors");

    write_index(dir, "{\"weight_map\":{\"a\":\"../m-1.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT, "is not a plain file name");

    write_index(dir, "{\"weight_map\":[1]}");
    expect_dir(dir, HD_EFORMAT, "'weight_map' is missing or not an object");

    write_index(dir, "{\"weight_map\":{\"a\":3}}");
    expect_dir(dir, HD_EFORMAT, "weight_map entry for tensor 'a' is not a string");

    write_index(dir, "{\"weight_map\":");
    expect_dir(dir, HD_EFORMAT, "not valid JSON");

    /* the same name in two shards: the index can only point at one of them */
    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\","
                     "\"c\":\"m-2.safetensors\",\"x\":\"m-3.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT,
               "tensor 'a' is in shard m-3.safetensors but the index maps it to "
               "m-1.safetensors");

    /* a corrupt shard is reported with the shard's own file name */
    char path[700];
    snprintf(path, sizeof path, "%s/m-2.safetensors", dir);
    CHECK(hd_test_write_file(path, "abc", 3) == 0);
    write_index(dir, "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-1.safetensors\","
                     "\"c\":\"m-2.safetensors\"}}");
    expect_dir(dir, HD_EFORMAT, "m-2.safetensors: file is 3 bytes");
}

/* ---- inventory ------------------------------------------------------------------------------ */

/* A small but complete config (every dimension distinct where possible). */
static const char mini_config[] =
    "{\"model_type\":\"qwen3_vl\",\"image_token_id\":60,\"video_token_id\":61,"
    "\"vision_start_token_id\":62,\"vision_end_token_id\":63,"
    "\"text_config\":{\"vocab_size\":70,\"hidden_size\":16,\"intermediate_size\":24,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":8,"
    "\"rms_norm_eps\":1e-6,\"rope_theta\":10000,"
    "\"rope_scaling\":{\"rope_type\":\"default\",\"mrope_section\":[2,1,1],"
    "\"mrope_interleaved\":true}},"
    "\"vision_config\":{\"depth\":3,\"hidden_size\":12,\"num_heads\":2,\"intermediate_size\":20,"
    "\"patch_size\":4,\"temporal_patch_size\":2,\"spatial_merge_size\":2,\"in_channels\":3,"
    "\"out_hidden_size\":16,\"num_position_embeddings\":9,\"deepstack_visual_indexes\":[0,2],"
    "\"hidden_act\":\"gelu_pytorch_tanh\"}}";

static int fill_zero(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                     hd_error *e) {
    (void)e;
    (void)ctx;
    (void)it;
    (void)off;
    memset(buf, 0, n);
    return 0;
}

typedef struct model_items {
    hd_st_write_item it[256];
    hd_inv_entry ent[256];
    int n;
} model_items;

static void collect_item(void *ctx, const hd_inv_entry *ent) {
    model_items *m = ctx;
    if (m->n >= 256) return;
    m->ent[m->n] = *ent;
    hd_st_write_item *it = &m->it[m->n];
    memset(it, 0, sizeof *it);
    it->name = m->ent[m->n].name;
    it->dtype = HD_BF16;
    it->ndim = ent->ndim;
    for (int d = 0; d < ent->ndim; d++)
        it->shape[d] = ent->shape[d];
    it->fill = fill_zero;
    m->n++;
}

enum mutation {
    MUT_NONE,
    MUT_DROP,
    MUT_RESHAPE,
    MUT_DTYPE,
    MUT_EXTRA,
    MUT_LM_HEAD,
    MUT_NO_VISION,
    MUT_DROP_ONE_VISION
};

/* Writes the mini model with one mutation applied to the tensor `target` and checks it. */
static int check_mutated(enum mutation mut, const char *target, int need_vision, hd_error *e) {
    hd_config cfg;
    hd_error pe = {0};
    CHECKF(hd_config_parse_json(&cfg, mini_config, strlen(mini_config), "mini", &pe) == 0, "%s",
           pe.msg);
    static model_items m;
    m.n = 0;
    hd_inventory_foreach(&cfg, collect_item, &m);
    int n = m.n;
    for (int i = 0; i < n; i++) {
        if (strcmp(m.it[i].name, target)) continue;
        if (mut == MUT_DROP)
            m.it[i] = m.it[--n];
        else if (mut == MUT_RESHAPE)
            m.it[i].shape[0] += 1;
        else if (mut == MUT_DTYPE)
            m.it[i].dtype = HD_F64;
        break;
    }
    if (mut == MUT_NO_VISION || mut == MUT_DROP_ONE_VISION) {
        int k = 0, dropped = 0;
        for (int i = 0; i < n; i++) {
            int vis = !strncmp(m.it[i].name, "model.visual.", 13);
            if (vis && (mut == MUT_NO_VISION || !dropped)) {
                dropped = 1;
                continue;
            }
            m.it[k++] = m.it[i];
        }
        n = k;
    }
    if (mut == MUT_EXTRA || mut == MUT_LM_HEAD)
        m.it[n++] =
            (hd_st_write_item){.name = mut == MUT_EXTRA ? "model.extra.weight" : "lm_head.weight",
                               .dtype = HD_BF16,
                               .ndim = 2,
                               .shape = {70, 16},
                               .fill = fill_zero};
    char dir[512], path[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECKF(hd_st_write(path, m.it, n, &pe) == 0, "%s", pe.msg);
    hd_safetensors st;
    CHECKF(hd_st_open_dir(&st, dir, &pe) == 0, "%s", pe.msg);
    int rc = hd_inventory_check(&cfg, &st, need_vision, e);
    hd_st_close(&st);
    return rc;
}

static void test_inventory_accepts_complete_model(void) {
    hd_error e = {0};
    CHECKF(check_mutated(MUT_NONE, "", 1, &e) == 0, "%s", e.msg);
    CHECKF(check_mutated(MUT_LM_HEAD, "", 1, &e) == 0, "lm_head is allowed: %s", e.msg);
    CHECKF(check_mutated(MUT_NO_VISION, "", 0, &e) == 0, "text-only model: %s", e.msg);
}

static void test_inventory_rejects_missing_tensor(void) {
    hd_error e = {0};
    CHECK(check_mutated(MUT_DROP, "model.language_model.layers.1.mlp.up_proj.weight", 0, &e) ==
          HD_EFORMAT);
    CHECKF(strstr(e.msg, "tensor 'model.language_model.layers.1.mlp.up_proj.weight' is missing"),
           "%s", e.msg);
    CHECK(strstr(e.msg, "[24, 16]") != NULL);
    CHECK(check_mutated(MUT_DROP, "model.x_embedder.proj1.weight", 0, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "'model.x_embedder.proj1.weight' is missing") != NULL);
    /* vision tower: required when asked for, and never half present */
    CHECK(check_mutated(MUT_NO_VISION, "", 1, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "model.visual.") && strstr(e.msg, "is missing"));
    CHECK(check_mutated(MUT_DROP_ONE_VISION, "", 0, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "model.visual.") && strstr(e.msg, "is missing"), "%s", e.msg);
    CHECK(check_mutated(MUT_DROP, "model.visual.deepstack_merger_list.1.norm.bias", 1, &e) ==
          HD_EFORMAT);
    CHECK(strstr(e.msg, "deepstack_merger_list.1.norm.bias' is missing (expected shape [48])"));
}

static void test_inventory_rejects_wrong_shape(void) {
    hd_error e = {0};
    CHECK(check_mutated(MUT_RESHAPE, "model.visual.patch_embed.proj.weight", 1, &e) ==
          HD_EMISMATCH);
    CHECKF(strstr(e.msg, "'model.visual.patch_embed.proj.weight' has shape [13, 3, 2, 4, 4], but "
                         "config.json implies [12, 3, 2, 4, 4]"),
           "%s", e.msg);
    CHECK(check_mutated(MUT_RESHAPE, "model.language_model.layers.0.self_attn.k_proj.weight", 0,
                        &e) == HD_EMISMATCH);
    CHECKF(strstr(e.msg, "has shape [17, 16], but config.json implies [16, 16]"), "%s", e.msg);
}

static void test_inventory_rejects_unsupported_dtype(void) {
    hd_error e = {0};
    CHECK(check_mutated(MUT_DTYPE, "model.language_model.norm.weight", 0, &e) == HD_EUNSUPPORTED);
    CHECKF(strstr(e.msg, "'model.language_model.norm.weight' has dtype F64"), "%s", e.msg);
}

static void test_inventory_rejects_unexpected_tensor(void) {
    hd_error e = {0};
    CHECK(check_mutated(MUT_EXTRA, "", 0, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "unexpected tensor 'model.extra.weight'"), "%s", e.msg);
    /* vision tensors in a file whose config has no vision_config are unexpected too */
    hd_config cfg;
    CHECK(hd_config_parse_json(&cfg, mini_config, strlen(mini_config), "mini", &e) == 0);
    cfg.vision.present = 0;
    hd_safetensors st;
    float v = 0;
    char dir[512], path[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    static model_items m;
    m.n = 0;
    hd_inventory_foreach(&cfg, collect_item, &m);
    m.it[m.n++] = (hd_st_write_item){.name = "model.visual.pos_embed.weight",
                                     .dtype = HD_F32,
                                     .ndim = 1,
                                     .shape = {1},
                                     .data = &v};
    CHECK(hd_st_write(path, m.it, m.n, &e) == 0);
    CHECK(hd_st_open_dir(&st, dir, &e) == 0);
    CHECK(hd_inventory_check(&cfg, &st, 0, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "unexpected tensor 'model.visual.pos_embed.weight'") != NULL);
    CHECK(hd_inventory_check(&cfg, &st, 1, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "no vision_config") != NULL);
    hd_st_close(&st);
}

static void test_inventory_messages_are_distinct(void) {
    hd_error a = {0}, b = {0}, c = {0}, d = {0};
    const char *t = "model.final_layer2.linear.bias";
    check_mutated(MUT_DROP, t, 0, &a);
    check_mutated(MUT_RESHAPE, t, 0, &b);
    check_mutated(MUT_DTYPE, t, 0, &c);
    check_mutated(MUT_EXTRA, "", 0, &d);
    const char *m[4] = {a.msg, b.msg, c.msg, d.msg};
    for (int i = 0; i < 4; i++) {
        CHECK(m[i][0] != 0);
        for (int j = i + 1; j < 4; j++)
            CHECK(strcmp(m[i], m[j]) != 0);
    }
}

/* ---- the golden tiny model ------------------------------------------------------------------- */

static void test_golden_tiny_model_loads_and_passes_inventory(void) {
    char dir[1024];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    hd_config cfg;
    hd_safetensors st;
    hd_error e = {0};
    CHECKF(hd_config_load_dir(&cfg, dir, &e) == 0, "%s", e.msg);
    CHECKF(hd_st_open_dir(&st, dir, &e) == 0, "%s", e.msg);
    CHECKF(hd_inventory_check(&cfg, &st, cfg.vision.present, &e) == 0, "%s", e.msg);
    hd_param_counts pc;
    hd_inventory_param_counts(&cfg, &pc);
    int expected = pc.n_tensors[0] + pc.n_tensors[1] + pc.n_tensors[2] +
                   (hd_st_find(&st, "lm_head.weight") ? 1 : 0);
    CHECK(st.n_tensors == expected);
    /* every float tensor converts */
    int ok = 1;
    for (int i = 0; i < st.n_tensors && ok; i++) {
        const hd_st_tensor *t = &st.tensors[i];
        float *buf = malloc((size_t)t->numel * sizeof *buf + 1);
        ok = buf && hd_st_read_f32(t, buf, (size_t)t->numel, &e) == 0;
        free(buf);
    }
    CHECKF(ok, "%s", e.msg);
    hd_st_close(&st);
}

int main(void) {
    RUN_TEST(test_truncated_file_is_rejected);
    RUN_TEST(test_zero_header_length_is_rejected);
    RUN_TEST(test_header_length_beyond_file_is_rejected);
    RUN_TEST(test_header_length_over_limit_is_rejected);
    RUN_TEST(test_bad_json_is_rejected);
    RUN_TEST(test_bad_entries_are_rejected_each_with_its_own_message);
    RUN_TEST(test_overlap_is_found_regardless_of_header_order);
    RUN_TEST(test_valid_header_parses_sorted_and_findable);
    RUN_TEST(test_typed_reads_convert_and_check_counts);
    RUN_TEST(test_write_round_trip);
    RUN_TEST(test_write_rejects_bad_items_and_leaves_no_file);
    RUN_TEST(test_open_missing_file_is_an_io_error);
    RUN_TEST(test_truncated_file_on_disk_is_rejected);
    RUN_TEST(test_sharded_directory_loads);
    RUN_TEST(test_sharded_index_errors_are_distinct);
    RUN_TEST(test_inventory_accepts_complete_model);
    RUN_TEST(test_inventory_rejects_missing_tensor);
    RUN_TEST(test_inventory_rejects_wrong_shape);
    RUN_TEST(test_inventory_rejects_unsupported_dtype);
    RUN_TEST(test_inventory_rejects_unexpected_tensor);
    RUN_TEST(test_inventory_messages_are_distinct);
    RUN_TEST(test_golden_tiny_model_loads_and_passes_inventory);
    return hd_test_finish();
}
