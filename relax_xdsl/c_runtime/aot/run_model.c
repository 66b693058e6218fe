/* run_model: runs a model built by `relax-xdsl build` on .npy files, with
   no Python.

     ./run_model in0.npy [in1.npy ...] OUT_PREFIX

   calls the entry point chosen at build time (MODEL_DEFAULT_ENTRY in
   model.h) and writes OUT_PREFIX0.npy, OUT_PREFIX1.npy, ... (tuples
   flattened, in order). Exit status 0, or 1 with a message on stderr.

   The .npy reader takes untrusted files: version 1.0 / 2.0 headers, a
   little-endian (or one-byte) dtype, C order; every length, count and byte
   total is checked (against overflow and against the file's size) before
   anything is allocated or read. bfloat16 has no .npy dtype numpy reads
   back, so it is refused here (the C API takes it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "run_model reads and writes little-endian .npy data as it is in memory: a little-endian machine is needed"
#endif

#define MAX_HEADER (1 << 20)
#define MAX_DIMS 64

static int fail(const char* path, const char* what) {
  fprintf(stderr, "run_model: %s: %s\n", path, what);
  return 1;
}

typedef struct {
  const char* descr;
  int32_t dtype;
} descr_entry;

/* The dtypes numpy writes, as it spells them on a little-endian machine. */
static const descr_entry DESCRS[] = {
    {"<f2", RX_FLOAT16}, {"<f4", RX_FLOAT32}, {"<f8", RX_FLOAT64}, {"|i1", RX_INT8},   {"<i2", RX_INT16},
    {"<i4", RX_INT32},   {"<i8", RX_INT64},   {"|u1", RX_UINT8},   {"<u2", RX_UINT16}, {"<u4", RX_UINT32},
    {"<u8", RX_UINT64},  {"|b1", RX_BOOL},
};
#define N_DESCRS ((int)(sizeof DESCRS / sizeof DESCRS[0]))

static const char* descr_of(int32_t dtype) {
  for (int i = 0; i < N_DESCRS; ++i)
    if (DESCRS[i].dtype == dtype) return DESCRS[i].descr;
  return NULL;
}

/* ---- a parser for the header's Python dict literal ---- */
typedef struct {
  const char* p;
  const char* end;
} cursor;

static void skip_space(cursor* c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) ++c->p;
}

static int take(cursor* c, char ch) {
  skip_space(c);
  if (c->p < c->end && *c->p == ch) {
    ++c->p;
    return 1;
  }
  return 0;
}

/* A quoted string of at most cap-1 characters (no escapes: numpy writes none in these keys and values). */
static int parse_string(cursor* c, char* out, size_t cap) {
  skip_space(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
  char q = *c->p++;
  size_t n = 0;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || n + 1 >= cap) return 0;
    out[n++] = *c->p++;
  }
  if (c->p >= c->end) return 0;
  ++c->p;
  out[n] = 0;
  return 1;
}

static int parse_word(cursor* c, const char* word) {
  skip_space(c);
  size_t n = strlen(word);
  if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
    c->p += n;
    return 1;
  }
  return 0;
}

/* A nonnegative decimal below 2**62 (numpy may write an L suffix in old files). */
static int parse_dim(cursor* c, int64_t* out) {
  skip_space(c);
  int64_t v = 0;
  int digits = 0;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
    if (v > ((INT64_C(1) << 62) - 1 - (*c->p - '0')) / 10) return 0;
    v = v * 10 + (*c->p++ - '0');
    ++digits;
  }
  if (!digits) return 0;
  if (c->p < c->end && *c->p == 'L') ++c->p;
  *out = v;
  return 1;
}

static int parse_shape(cursor* c, int64_t* dims, int32_t* ndim) {
  if (!take(c, '(')) return 0;
  *ndim = 0;
  if (take(c, ')')) return 1;
  for (;;) {
    if (*ndim >= MAX_DIMS) return 0;
    if (!parse_dim(c, &dims[*ndim])) return 0;
    ++*ndim;
    if (take(c, ')')) return 1;
    if (!take(c, ',')) return 0;
    if (take(c, ')')) return 1;
  }
}

typedef struct {
  FILE* f;
  const char* path;
} input_file;

static void close_file(input_file* in) {
  if (in->f) fclose(in->f);
  in->f = NULL;
}

/* Reads `path` into `t` (data and shape malloc'd); 0, or 1 after printing why not. */
static int read_npy(const char* path, rx_tensor* t) {
  input_file in = {fopen(path, "rb"), path};
  char* header = NULL;
  int status = 1;
  memset(t, 0, sizeof *t);
  if (!in.f) {
    fprintf(stderr, "run_model: %s: cannot open: %s\n", path, strerror(errno));
    return 1;
  }
  if (fseek(in.f, 0, SEEK_END) != 0) goto io_error;
  long file_size = ftell(in.f);
  if (file_size < 0 || fseek(in.f, 0, SEEK_SET) != 0) goto io_error;
  unsigned char magic[8];
  if (file_size < 10 || fread(magic, 1, 8, in.f) != 8) {
    fail(path, "not a .npy file (shorter than its preamble)");
    goto done;
  }
  if (memcmp(magic, "\x93NUMPY", 6) != 0) {
    fail(path, "not a .npy file (no \\x93NUMPY magic)");
    goto done;
  }
  int64_t header_len, offset;
  if (magic[6] == 1 && magic[7] == 0) {
    unsigned char b[2];
    if (fread(b, 1, 2, in.f) != 2) goto truncated;
    header_len = b[0] | (b[1] << 8);
    offset = 10;
  } else if (magic[6] == 2 && magic[7] == 0) {
    unsigned char b[4];
    if (fread(b, 1, 4, in.f) != 4) goto truncated;
    header_len = (int64_t)b[0] | ((int64_t)b[1] << 8) | ((int64_t)b[2] << 16) | ((int64_t)b[3] << 24);
    offset = 12;
  } else {
    fprintf(stderr, "run_model: %s: .npy format version %d.%d is not supported (1.0 and 2.0 are)\n", path, magic[6],
            magic[7]);
    goto done;
  }
  if (header_len > MAX_HEADER) {
    fprintf(stderr, "run_model: %s: header of %lld bytes is longer than %d\n", path, (long long)header_len, MAX_HEADER);
    goto done;
  }
  if (offset + header_len > (int64_t)file_size) goto truncated;
  header = (char*)malloc((size_t)header_len + 1);
  if (!header) goto no_memory;
  if (fread(header, 1, (size_t)header_len, in.f) != (size_t)header_len) goto truncated;
  header[header_len] = 0;

  cursor c = {header, header + header_len};
  char key[32], descr[32];
  int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
  int64_t dims[MAX_DIMS];
  int32_t ndim = 0;
  if (!take(&c, '{')) goto bad_header;
  while (!take(&c, '}')) {
    if (!parse_string(&c, key, sizeof key) || !take(&c, ':')) goto bad_header;
    if (strcmp(key, "descr") == 0 && !have_descr) {
      if (!parse_string(&c, descr, sizeof descr)) {
        fail(path, "its dtype ('descr') is not a simple type string (structured dtypes are not supported)");
        goto done;
      }
      have_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
      if (parse_word(&c, "False")) fortran = 0;
      else if (parse_word(&c, "True")) fortran = 1;
      else goto bad_header;
      have_order = 1;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (!parse_shape(&c, dims, &ndim)) {
        fprintf(stderr, "run_model: %s: its shape is not a tuple of at most %d nonnegative integers below 2**62\n",
                path, MAX_DIMS);
        goto done;
      }
      have_shape = 1;
    } else {
      goto bad_header;
    }
    if (!take(&c, ',')) {
      if (!take(&c, '}')) goto bad_header;
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape) goto bad_header;
  if (fortran) {
    fail(path, "Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)");
    goto done;
  }
  t->dtype = 0;
  for (int i = 0; i < N_DESCRS; ++i)
    if (strcmp(descr, DESCRS[i].descr) == 0) t->dtype = DESCRS[i].dtype;
  if (!t->dtype && (descr[0] == '<' || descr[0] == '=' || descr[0] == '|'))  /* the same type, another spelling */
    for (int i = 0; i < N_DESCRS; ++i)
      if (strcmp(descr + 1, DESCRS[i].descr + 1) == 0) t->dtype = DESCRS[i].dtype;
  if (!t->dtype) {
    for (char* ch = descr; *ch; ++ch)  /* the file's bytes, printed as printable ASCII only */
      if (*ch < 0x20 || *ch > 0x7e) *ch = '?';
    fprintf(stderr, "run_model: %s: dtype '%s' is not supported (%s)\n", path, descr,
            descr[0] == '>' ? "big-endian" : "supported: float16/32/64, int8..int64, uint8..uint64, bool");
    goto done;
  }
  int64_t count = 1, bytes;
  for (int32_t i = 0; i < ndim; ++i)
    if (__builtin_mul_overflow(count, dims[i], &count)) {
      fail(path, "its shape's element count overflows 64 bits");
      goto done;
    }
  if (__builtin_mul_overflow(count, model_dtype_size(t->dtype), &bytes)) {
    fail(path, "its data size overflows 64 bits");
    goto done;
  }
  int64_t available = (int64_t)file_size - offset - header_len;
  if (bytes > available) {
    fprintf(stderr, "run_model: %s: truncated: its shape needs %lld bytes of data, the file has %lld\n", path,
            (long long)bytes, (long long)available);
    goto done;
  }
  if (bytes < available) {
    fprintf(stderr, "run_model: %s: %lld bytes follow its data (not a .npy file numpy wrote)\n", path,
            (long long)(available - bytes));
    goto done;
  }
  t->ndim = ndim;
  t->shape = (int64_t*)malloc(sizeof(int64_t) * (size_t)(ndim > 0 ? ndim : 1));
  if (!t->shape) goto no_memory;
  if (ndim > 0) memcpy(t->shape, dims, sizeof(int64_t) * (size_t)ndim);
  if (bytes > 0) {
    t->data = malloc((size_t)bytes);
    if (!t->data) goto no_memory;
    if (fread(t->data, 1, (size_t)bytes, in.f) != (size_t)bytes) goto truncated;
  }
  if (t->dtype == RX_BOOL) /* numpy reads any nonzero byte as True */
    for (int64_t i = 0; i < bytes; ++i) ((unsigned char*)t->data)[i] = ((unsigned char*)t->data)[i] != 0;
  status = 0;
  goto done;

io_error:
  fprintf(stderr, "run_model: %s: cannot read: %s\n", path, strerror(errno));
  goto done;
truncated:
  fail(path, "truncated .npy file");
  goto done;
bad_header:
  fail(path, "malformed .npy header (expected a dict with 'descr', 'fortran_order' and 'shape')");
  goto done;
no_memory:
  fail(path, "out of memory");
done:
  free(header);
  close_file(&in);
  if (status != 0) {
    free(t->data);
    free(t->shape);
    memset(t, 0, sizeof *t);
  }
  return status;
}

/* Writes `t` as a version 1.0 .npy file; 0, or 1 after printing why not. */
static int write_npy(const char* path, const rx_tensor* t) {
  const char* descr = descr_of(t->dtype);
  if (!descr) {
    fprintf(stderr, "run_model: %s: output dtype %s has no .npy form numpy reads\n", path,
            model_dtype_name(t->dtype));
    return 1;
  }
  char dict[64 * 24 + 128];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  int64_t count = 1;
  for (int32_t i = 0; i < t->ndim && n < (int)sizeof dict; ++i) {
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)t->shape[i],
                  t->ndim > 1 && i + 1 < t->ndim ? " " : "");
    count *= t->shape[i];
  }
  if (n < (int)sizeof dict) n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  if (n >= (int)sizeof dict - 64 || t->ndim > MAX_DIMS) return fail(path, "output rank too large for a .npy header");
  /* 10 bytes of preamble + header, padded with spaces and ended by \n to a multiple of 64 */
  int total = ((10 + n + 1 + 63) / 64) * 64;
  int pad = total - 10 - n - 1;
  FILE* f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "run_model: %s: cannot write: %s\n", path, strerror(errno));
    return 1;
  }
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)((total - 10) & 0xff),
                           (unsigned char)((total - 10) >> 8)};
  size_t bytes = (size_t)count * (size_t)model_dtype_size(t->dtype);
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; ok && i < pad; ++i) ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF;
  if (ok && bytes > 0) ok = fwrite(t->data, 1, bytes, f) == bytes;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    fprintf(stderr, "run_model: %s: cannot write: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  int n_inputs = MODEL_DEFAULT_N_INPUTS, n_outputs = MODEL_DEFAULT_N_OUTPUTS;
  if (argc != n_inputs + 2) {
    fprintf(stderr,
            "usage: %s IN0.npy ... OUT_PREFIX\n"
            "runs %s (%d input%s, %d output%s); writes OUT_PREFIX0.npy, OUT_PREFIX1.npy, ...\n"
            "run_model: expected %d input file%s and an output prefix, got %d argument%s\n",
            argv[0], MODEL_DEFAULT_NAME, n_inputs, n_inputs == 1 ? "" : "s", n_outputs, n_outputs == 1 ? "" : "s",
            n_inputs, n_inputs == 1 ? "" : "s", argc - 1, argc == 2 ? "" : "s");
    return 1;
  }
  rx_tensor inputs[MODEL_DEFAULT_N_INPUTS + 1];
  rx_tensor outputs[MODEL_DEFAULT_N_OUTPUTS + 1];
  memset(inputs, 0, sizeof inputs);
  memset(outputs, 0, sizeof outputs);
  int status = 0;
  for (int k = 0; k < n_inputs && status == 0; ++k) status = read_npy(argv[1 + k], &inputs[k]);
  if (status == 0 && MODEL_DEFAULT_ENTRY(inputs, n_inputs, outputs, n_outputs) != 0) {
    fprintf(stderr, "run_model: %s failed: %s\n", MODEL_DEFAULT_NAME, model_last_error());
    status = 1;
  }
  const char* prefix = argv[argc - 1];
  for (int k = 0; k < n_outputs && status == 0; ++k) {
    size_t len = strlen(prefix) + 32;
    char* path = (char*)malloc(len);
    if (!path) return fail(prefix, "out of memory");
    snprintf(path, len, "%s%d.npy", prefix, k);
    status = write_npy(path, &outputs[k]);
    free(path);
  }
  for (int k = 0; k < n_inputs; ++k) {
    free(inputs[k].data);
    free(inputs[k].shape);
  }
  for (int k = 0; k < n_outputs; ++k) model_tensor_free(&outputs[k]);
  return status;
}
