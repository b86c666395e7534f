/*
 * kop._batch_codec: Kafka record batches <-> Pulsar batch entries, a whole batch per call.
 *
 * The `pulsar` entry format stores each Kafka record as one message of a Pulsar batch entry. Done
 * record by record in Python this cost tens of microseconds per record; here one call converts a
 * whole batch. It covers the common records only and returns None for anything else, and the
 * caller then takes the pure-Python path (kop/backend/batch_codec.py), which is the reference: on
 * every input where this returns bytes, they equal the Python path's bytes
 * (tests/unit/test_batch_codec.py checks it on random batches). It never raises on bad input: a
 * record it cannot parse also means None, and the Python path reports the error.
 *
 * kafka_to_pulsar(records, count, base_timestamp, tag) -> bytes | None
 *   records: the uncompressed records of a v2 batch (what follows its 61-byte header).
 *   Each record becomes [u32 size][SingleMessageMetadata][value]: headers -> properties (and `tag`
 *   as property __kafka_producer on the first record), key -> partition_key, value size ->
 *   payload_size, timestamp -> event_time, null value -> null_value. Covered: timestamps > 0, keys
 *   null or non-empty UTF-8, headers with UTF-8 names and values, names in strictly increasing order
 *   and not starting with "__kafka_" (what convert.record_to_pulsar maps without its fallbacks).
 *
 * pulsar_to_kafka(payload, count, skip, publish_time) -> (records, first_ts, max_ts) | None
 *   payload: an uncompressed Pulsar batch payload of `count` messages. Messages skip.. become
 *   Kafka records with offset deltas 0.. (convert.pulsar_to_record's mapping). Covered: UTF-8 keys
 *   and properties, no property named __kafka_key_b64, __kafka_ts or __kafka_headers, no repeated
 *   property names, no base64-flagged keys.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_HEADERS 1024

/* ---- varints ---------------------------------------------------------------------------- */

/* Protobuf unsigned varint; returns 0 on truncation or overlong. */
static int read_uvarint(const uint8_t *p, const uint8_t *end, const uint8_t **next, uint64_t *out) {
    uint64_t result = 0;
    int shift = 0;
    while (p < end && shift < 64) {
        uint8_t b = *p++;
        result |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *next = p;
            *out = result;
            return 1;
        }
        shift += 7;
    }
    return 0;
}

/* Kafka's zigzag varlong. */
static int read_zigzag(const uint8_t *p, const uint8_t *end, const uint8_t **next, int64_t *out) {
    uint64_t raw;
    if (!read_uvarint(p, end, next, &raw)) return 0;
    *out = (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
    return 1;
}

static size_t uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v > 0x7F) { v >>= 7; n++; }
    return n;
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
    while (v > 0x7F) { *p++ = (uint8_t)((v & 0x7F) | 0x80); v >>= 7; }
    *p++ = (uint8_t)v;
    return p;
}

static size_t zigzag_size(int64_t v) {
    return uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static uint8_t *put_zigzag(uint8_t *p, int64_t v) {
    return put_uvarint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* ---- UTF-8, as Python's strict decoder accepts it ------------------------------------------ */

static int valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0) return 0;  /* overlong */
            if (c == 0xED && s[i + 1] >= 0xA0) return 0; /* surrogates */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && s[i + 1] < 0x90) return 0;  /* overlong */
            if (c == 0xF4 && s[i + 1] >= 0x90) return 0; /* above U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c) return c;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

static const char KAFKA_PREFIX[] = "__kafka_";
#define KAFKA_PREFIX_LEN 8

static int has_prefix(const uint8_t *s, size_t n) {
    return n >= KAFKA_PREFIX_LEN && memcmp(s, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0;
}

/* ---- Kafka -> Pulsar ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *name; size_t name_len;
    const uint8_t *value; size_t value_len;
} Prop;


typedef struct {
    const uint8_t *key; int64_t key_len;      /* -1: null */
    const uint8_t *value; int64_t value_len;  /* -1: null */
    int64_t timestamp;
    Prop *headers; size_t header_count;
} KRecord;

/* Parses one record at *pp; fills r; returns 0 when the record is malformed or not covered. */
static int parse_kafka_record(const uint8_t **pp, const uint8_t *end, int64_t base_ts, KRecord *r,
                              Prop *headers, size_t room) {
    const uint8_t *p = *pp;
    int64_t length, delta, offset_delta, n;
    if (!read_zigzag(p, end, &p, &length) || length < 0 || length > end - p) return 0;
    const uint8_t *rec_end = p + length;
    if (p >= rec_end) return 0;
    p++;  /* attributes */
    if (!read_zigzag(p, rec_end, &p, &delta)) return 0;
    r->timestamp = base_ts + delta;
    if (r->timestamp <= 0) return 0;
    if (!read_zigzag(p, rec_end, &p, &offset_delta)) return 0;
    if (!read_zigzag(p, rec_end, &p, &n) || n < -1 || n > rec_end - p) return 0;
    r->key_len = n; r->key = p;
    if (n >= 0) {
        if (n == 0 || !valid_utf8(p, (size_t)n)) return 0;
        p += n;
    }
    if (!read_zigzag(p, rec_end, &p, &n) || n < -1 || n > rec_end - p) return 0;
    r->value_len = n; r->value = p;
    if (n > 0) p += n;
    if (!read_zigzag(p, rec_end, &p, &n) || n < 0 || n > MAX_HEADERS || (size_t)n > room) return 0;
    r->header_count = (size_t)n;
    r->headers = headers;
    for (int64_t h = 0; h < n; h++) {
        int64_t name_len, value_len;
        if (!read_zigzag(p, rec_end, &p, &name_len) || name_len < 0 || name_len > rec_end - p) return 0;
        const uint8_t *name = p;
        if (!valid_utf8(name, (size_t)name_len) || has_prefix(name, (size_t)name_len)) return 0;
        if (h > 0 && bytes_cmp(headers[h - 1].name, headers[h - 1].name_len, name, (size_t)name_len) >= 0) return 0;
        p += name_len;
        if (!read_zigzag(p, rec_end, &p, &value_len) || value_len < 0 || value_len > rec_end - p) return 0;
        if (!valid_utf8(p, (size_t)value_len)) return 0;
        headers[h].name = name; headers[h].name_len = (size_t)name_len;
        headers[h].value = p; headers[h].value_len = (size_t)value_len;
        p += value_len;
    }
    if (p != rec_end) return 0;
    *pp = rec_end;
    return 1;
}

static size_t key_value_size(size_t key_len, size_t value_len) {
    size_t inner = 1 + uvarint_size(key_len) + key_len + 1 + uvarint_size(value_len) + value_len;
    return 1 + uvarint_size(inner) + inner;
}

static uint8_t *put_key_value(uint8_t *p, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn) {
    size_t inner = 1 + uvarint_size(kn) + kn + 1 + uvarint_size(vn) + vn;
    *p++ = 0x0A;  /* SingleMessageMetadata.properties */
    p = put_uvarint(p, inner);
    *p++ = 0x0A; p = put_uvarint(p, kn); memcpy(p, k, kn); p += kn;
    *p++ = 0x12; p = put_uvarint(p, vn); memcpy(p, v, vn); p += vn;
    return p;
}

/* The SingleMessageMetadata of record r (size, or written at out when out is not NULL). */
static size_t single_metadata(const KRecord *r, const uint8_t *tag, size_t tag_len, uint8_t *out) {
    size_t size = 0;
    uint8_t *p = out;
    for (size_t i = 0; i < r->header_count; i++) {
        const Prop *h = &r->headers[i];
        if (out) p = put_key_value(p, h->name, h->name_len, h->value, h->value_len);
        else size += key_value_size(h->name_len, h->value_len);
    }
    if (tag) {
        static const uint8_t producer[] = "__kafka_producer";
        if (out) p = put_key_value(p, producer, sizeof(producer) - 1, tag, tag_len);
        else size += key_value_size(sizeof(producer) - 1, tag_len);
    }
    if (r->key_len >= 0) {
        if (out) { *p++ = 0x12; p = put_uvarint(p, (uint64_t)r->key_len); memcpy(p, r->key, (size_t)r->key_len); p += r->key_len; }
        else size += 1 + uvarint_size((uint64_t)r->key_len) + (size_t)r->key_len;
    }
    uint64_t payload_size = r->value_len > 0 ? (uint64_t)r->value_len : 0;
    if (out) { *p++ = 0x18; p = put_uvarint(p, payload_size); *p++ = 0x28; p = put_uvarint(p, (uint64_t)r->timestamp); }
    else size += 1 + uvarint_size(payload_size) + 1 + uvarint_size((uint64_t)r->timestamp);
    if (r->value_len < 0) {
        if (out) { *p++ = 0x48; *p++ = 0x01; }
        else size += 2;
    }
    return out ? (size_t)(p - out) : size;
}

static PyObject *kafka_to_pulsar(PyObject *self, PyObject *args) {
    Py_buffer records;
    Py_ssize_t count;
    long long base_ts;
    PyObject *tag_obj;
    if (!PyArg_ParseTuple(args, "y*nLO", &records, &count, &base_ts, &tag_obj)) return NULL;
    const uint8_t *tag = NULL;
    Py_ssize_t tag_len = 0;
    if (tag_obj != Py_None) {
        tag = (const uint8_t *)PyUnicode_AsUTF8AndSize(tag_obj, &tag_len);
        if (!tag) { PyBuffer_Release(&records); return NULL; }
    }
    PyObject *result = NULL;
    KRecord *recs = NULL;
    Prop *headers = NULL;
    if (count <= 0 || count > (Py_ssize_t)(records.len)) goto fallback;
    size_t room = (size_t)records.len / 2 + 1;  /* a header takes at least 2 bytes */
    recs = PyMem_Malloc(sizeof(KRecord) * (size_t)count);
    headers = PyMem_Malloc(sizeof(Prop) * room);
    if (!recs || !headers) { PyMem_Free(recs); PyMem_Free(headers); PyBuffer_Release(&records); return PyErr_NoMemory(); }
    const uint8_t *p = records.buf, *end = p + records.len;
    size_t total = 0, used = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!parse_kafka_record(&p, end, base_ts, &recs[i], headers + used, room - used)) goto fallback;
        used += recs[i].header_count;
        size_t meta = single_metadata(&recs[i], i == 0 ? tag : NULL, (size_t)tag_len, NULL);
        total += 4 + meta + (recs[i].value_len > 0 ? (size_t)recs[i].value_len : 0);
    }
    if (p != end) goto fallback;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!result) goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint8_t *size_at = out;
        size_t meta = single_metadata(&recs[i], i == 0 ? tag : NULL, (size_t)tag_len, out + 4);
        size_at[0] = (uint8_t)(meta >> 24); size_at[1] = (uint8_t)(meta >> 16);
        size_at[2] = (uint8_t)(meta >> 8); size_at[3] = (uint8_t)meta;
        out += 4 + meta;
        if (recs[i].value_len > 0) { memcpy(out, recs[i].value, (size_t)recs[i].value_len); out += recs[i].value_len; }
    }
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(recs);
    PyMem_Free(headers);
    PyBuffer_Release(&records);
    return result;
}

/* ---- Pulsar -> Kafka ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *key; int64_t key_len;  /* -1: null */
    const uint8_t *value; int64_t value_len;  /* -1: null */
    int64_t timestamp;
    Prop *props; size_t prop_count;
} PRecord;

static int skip_field(const uint8_t **pp, const uint8_t *end, uint64_t key) {
    const uint8_t *p = *pp;
    uint64_t v;
    switch (key & 7) {
    case 0: if (!read_uvarint(p, end, &p, &v)) return 0; break;
    case 1: if (end - p < 8) return 0; p += 8; break;
    case 2: if (!read_uvarint(p, end, &p, &v) || v > (uint64_t)(end - p)) return 0; p += v; break;
    case 5: if (end - p < 4) return 0; p += 4; break;
    default: return 0;
    }
    *pp = p;
    return 1;
}

static int parse_key_value(const uint8_t *p, const uint8_t *end, Prop *prop) {
    int have_key = 0;
    prop->value = (const uint8_t *)""; prop->value_len = 0;
    while (p < end) {
        uint64_t key, len;
        if (!read_uvarint(p, end, &p, &key)) return 0;
        if ((key == 0x0A || key == 0x12)) {
            if (!read_uvarint(p, end, &p, &len) || len > (uint64_t)(end - p)) return 0;
            if (key == 0x0A) { prop->name = p; prop->name_len = len; have_key = 1; }
            else { prop->value = p; prop->value_len = len; }
            p += len;
        } else if (!skip_field(&p, end, key)) {
            return 0;
        }
    }
    return have_key;
}

static int prop_cmp(const void *a, const void *b) {
    const Prop *x = a, *y = b;
    return bytes_cmp(x->name, x->name_len, y->name, y->name_len);
}

/* One SingleMessageMetadata + payload; props go to the caller's array (room for `room`). */
static int parse_single(const uint8_t **pp, const uint8_t *end, int64_t publish_time, PRecord *r,
                        Prop *props, size_t room) {
    const uint8_t *p = *pp;
    if (end - p < 4) return 0;
    uint32_t meta_size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    p += 4;
    if (meta_size > (uint64_t)(end - p)) return 0;
    const uint8_t *meta_end = p + meta_size;
    int64_t payload_size = -2, event_time = 0;
    int null_value = 0;
    r->key = NULL; r->key_len = -1; r->props = props; r->prop_count = 0;
    while (p < meta_end) {
        uint64_t key, v;
        if (!read_uvarint(p, meta_end, &p, &key)) return 0;
        switch (key) {
        case 0x0A: {  /* properties */
            if (!read_uvarint(p, meta_end, &p, &v) || v > (uint64_t)(meta_end - p)) return 0;
            if (r->prop_count >= room) return 0;
            Prop *prop = &props[r->prop_count];
            if (!parse_key_value(p, p + v, prop)) return 0;
            if (!valid_utf8(prop->name, prop->name_len) || !valid_utf8(prop->value, prop->value_len)) return 0;
            p += v;
            if (has_prefix(prop->name, prop->name_len)) {
                /* kop's own marks: three change the record (the Python path handles them), the
                   others are not headers */
                static const char *special[] = {"__kafka_key_b64", "__kafka_ts", "__kafka_headers"};
                for (int s = 0; s < 3; s++)
                    if (prop->name_len == strlen(special[s]) && memcmp(prop->name, special[s], prop->name_len) == 0)
                        return 0;
                break;
            }
            r->prop_count++;
            break;
        }
        case 0x12:  /* partition_key */
            if (!read_uvarint(p, meta_end, &p, &v) || v > (uint64_t)(meta_end - p)) return 0;
            if (!valid_utf8(p, v)) return 0;
            if (v > 0) { r->key = p; r->key_len = (int64_t)v; } else { r->key = NULL; r->key_len = -1; }
            p += v;
            break;
        case 0x18:  /* payload_size */
            if (!read_uvarint(p, meta_end, &p, &v) || v > 0x7FFFFFFF) return 0;
            payload_size = (int64_t)v;
            break;
        case 0x28:  /* event_time */
            if (!read_uvarint(p, meta_end, &p, &v)) return 0;
            event_time = (int64_t)v;
            break;
        case 0x30:  /* partition_key_b64_encoded */
            if (!read_uvarint(p, meta_end, &p, &v)) return 0;
            if (v) return 0;
            break;
        case 0x48:  /* null_value */
            if (!read_uvarint(p, meta_end, &p, &v)) return 0;
            null_value = v != 0;
            break;
        default:
            if (!skip_field(&p, meta_end, key)) return 0;
        }
    }
    if (payload_size < 0 || payload_size > end - meta_end) return 0;
    r->value = meta_end;
    r->value_len = null_value ? -1 : payload_size;
    r->timestamp = event_time > 0 ? event_time : publish_time;
    if (r->prop_count > 1) {
        qsort(r->props, r->prop_count, sizeof(Prop), prop_cmp);
        for (size_t i = 1; i < r->prop_count; i++)
            if (prop_cmp(&r->props[i - 1], &r->props[i]) == 0) return 0;  /* repeated name */
    }
    *pp = meta_end + payload_size;
    return 1;
}

static size_t kafka_record_body(const PRecord *r, int64_t ts_delta, int64_t offset_delta, uint8_t *out) {
    size_t size = 1 + zigzag_size(ts_delta) + zigzag_size(offset_delta);
    size += zigzag_size(r->key_len) + (r->key_len > 0 ? (size_t)r->key_len : 0);
    size += zigzag_size(r->value_len) + (r->value_len > 0 ? (size_t)r->value_len : 0);
    size += zigzag_size((int64_t)r->prop_count);
    for (size_t i = 0; i < r->prop_count; i++)
        size += zigzag_size((int64_t)r->props[i].name_len) + r->props[i].name_len
              + zigzag_size((int64_t)r->props[i].value_len) + r->props[i].value_len;
    if (!out) return size + zigzag_size((int64_t)size);
    uint8_t *p = put_zigzag(out, (int64_t)size);
    *p++ = 0;  /* attributes */
    p = put_zigzag(p, ts_delta);
    p = put_zigzag(p, offset_delta);
    p = put_zigzag(p, r->key_len);
    if (r->key_len > 0) { memcpy(p, r->key, (size_t)r->key_len); p += r->key_len; }
    p = put_zigzag(p, r->value_len);
    if (r->value_len > 0) { memcpy(p, r->value, (size_t)r->value_len); p += r->value_len; }
    p = put_zigzag(p, (int64_t)r->prop_count);
    for (size_t i = 0; i < r->prop_count; i++) {
        p = put_zigzag(p, (int64_t)r->props[i].name_len);
        memcpy(p, r->props[i].name, r->props[i].name_len); p += r->props[i].name_len;
        p = put_zigzag(p, (int64_t)r->props[i].value_len);
        memcpy(p, r->props[i].value, r->props[i].value_len); p += r->props[i].value_len;
    }
    return (size_t)(p - out);
}

static PyObject *pulsar_to_kafka(PyObject *self, PyObject *args) {
    Py_buffer payload;
    Py_ssize_t count, skip;
    long long publish_time;
    if (!PyArg_ParseTuple(args, "y*nnL", &payload, &count, &skip, &publish_time)) return NULL;
    PyObject *result = NULL;
    PRecord *recs = NULL;
    Prop *props = NULL;
    if (count <= 0 || skip < 0 || skip >= count || count > (Py_ssize_t)payload.len / 4 + 1) goto fallback;
    size_t prop_room = (size_t)payload.len / 4 + 1;  /* a KeyValue takes at least 4 bytes */
    recs = PyMem_Malloc(sizeof(PRecord) * (size_t)count);
    props = PyMem_Malloc(sizeof(Prop) * prop_room);
    if (!recs || !props) { PyMem_Free(recs); PyMem_Free(props); PyBuffer_Release(&payload); return PyErr_NoMemory(); }
    const uint8_t *p = payload.buf, *end = p + payload.len;
    size_t used = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!parse_single(&p, end, publish_time, &recs[i], props + used, prop_room - used)) goto fallback;
        used += recs[i].prop_count;
    }
    int64_t first_ts = recs[skip].timestamp, max_ts = first_ts;
    size_t total = 0;
    for (Py_ssize_t i = skip; i < count; i++) {
        if (recs[i].timestamp > max_ts) max_ts = recs[i].timestamp;
        total += kafka_record_body(&recs[i], recs[i].timestamp - first_ts, i - skip, NULL);
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!data) goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = skip; i < count; i++)
        out += kafka_record_body(&recs[i], recs[i].timestamp - first_ts, i - skip, out);
    result = Py_BuildValue("(NLL)", data, (long long)first_ts, (long long)max_ts);
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(recs);
    PyMem_Free(props);
    PyBuffer_Release(&payload);
    return result;
}

static PyMethodDef methods[] = {
    {"kafka_to_pulsar", kafka_to_pulsar, METH_VARARGS, "Kafka records -> Pulsar batch payload, or None."},
    {"pulsar_to_kafka", pulsar_to_kafka, METH_VARARGS, "Pulsar batch payload -> Kafka records, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batch_codec", NULL, -1, methods};

PyMODINIT_FUNC PyInit__batch_codec(void) { return PyModule_Create(&module); }
