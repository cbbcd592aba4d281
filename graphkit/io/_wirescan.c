/* graphkit.io._wirescan: one pass over a binary GraphDef's bytes, without building protobuf messages.
 *
 * scan_graph(buffer) -> (names, positions, inputs, ops, duplicates, spans, shaped, colocated, header, attrs,
 *                        devices)
 *   names        list[str]              each node's name, in file order
 *   positions    dict[str, int]         name -> node number         (a name given twice: the last node,
 *   inputs       dict[str, tuple[str]]  name -> input strings        at the first one's place, as a
 *   ops          dict[str, str]         name -> op (interned)        Python dict does)
 *   duplicates   list[str]              names given to more than one node
 *   spans        bytes                  3 native int64 per node: field start, payload start, field end
 *   shaped       set[str]               nodes with attr _output_shapes
 *   colocated    dict[str, list[str]]   name -> X of each "loc:@X" entry of attr _class (when it has some)
 *   header       list[tuple[int, int, int]]  (field number, start, end) of every top-level non-node field
 *   attrs        dict[str, tuple[str]]  name -> its attr names (shared strings; one tuple per kind)
 *   devices      dict[str, str]         each distinct non-empty device string -> the first node with it
 *
 *
 * check(buffer, schema, dtypes, max_depth, (tensor_msg, shape_msg, attr_msg, entry_msg, node_msg), itemsize)
 *   Raises ValueError unless the bytes are a message protobuf would parse and keep: every field's wire
 *   format, recursively through the message fields the schema names; UTF-8 in string fields (TF's protos
 *   are proto3, so protobuf refuses anything else there); packed numbers; DataType enums that exist (TF's
 *   importer refuses others); no deeper than max_depth. The schema (graphkit.io.scan builds it from the
 *   protobuf descriptors) is int32s: the message count, each message's offset, and at that offset its
 *   field count and (number, kind, sub-message) triples, the first message being the one checked;
 *   `dtypes` is a bitmap of the valid DataType values; every TensorProto (message `tensor_msg`) must also be
 *   one TF could build (`itemsize` gives each DataType's bytes per element, 0: no fixed size), every
 *   TensorShapeProto (`shape_msg`) free of dimensions below -1, every AttrValue (`attr_msg`) holding a value
 *   and every attr map entry (`entry_msg`) an AttrValue, every Const NodeDef (`node_msg`) a value of its dtype. A wire type the schema does not expect also fails:
 *   callers take the protobuf path then, which decides, so being stricter than protobuf costs only time.
 *
 * with_inputs(buffer, start, end, inputs) -> bytes
 *   The NodeDef at buffer[start:end] with its inputs replaced, as a GraphDef node field (see below).
 * reachable(inputs, starts, colocated) -> set
 *   The nodes some need (io.passes.reachable's walk).
 * drop_keys(names, table, ...)
 *   Each name removed from each dict or set that holds it (an index's tables, when many nodes go).
 * splice(buffer, spans, positions, fields, rewired, inputs) -> (bytes, list[str])
 *   A GraphDef's bytes for an index's nodes: dropped, replaced, or their inputs swapped (see below).
 * same_bodies(buffer, spans, names, positions, skip, limit) -> dict[str, str]
 *   Nodes equal but for their names, by their bytes (see below).
 * in_order(inputs, ops, sources_ok) -> bool;  odd_inputs(inputs) -> list[tuple[str, str]]
 *   What validate and topological_order check per edge (see below).
 * merge_sweep(names, ops, inputs, mergeable, protected, twin, renamed, same) -> (int, bool)
 *   What optimize's dedupe does per node, on the index's dicts (see below).
 *
 * Protobuf semantics are followed where they matter: the last name/op wins, repeated inputs keep their
 * order, the last _class map entry wins, a repeated embedded `list` merges, and another AttrValue oneof
 * member after it clears it. Anything that is not valid wire format raises ValueError; the caller then
 * takes the protobuf path, which reports the problem. Only the Python C API and the C library are used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef const unsigned char *ptr_t;

static int read_varint(ptr_t *pp, ptr_t end, uint64_t *out)
{
    ptr_t p = *pp;
    uint64_t value = 0;
    int shift;
    for (shift = 0; shift < 64 && p < end; shift += 7) {
        unsigned char byte = *p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (byte < 0x80) {
            *pp = p;
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* Read one field at *pp; for LEN fields set *val and *len to the payload, for VARINT fields *varint to the
 * value. Returns -1 on bad wire format. */
static int read_field(ptr_t *pp, ptr_t end, uint64_t *number, int *wire, ptr_t *val, size_t *len,
                      uint64_t *varint)
{
    uint64_t key, n;
    if (read_varint(pp, end, &key) < 0)
        return -1;
    *number = key >> 3;
    *wire = (int)(key & 7);
    if (*number == 0 || *number > 0x1fffffff)
        return -1;
    switch (*wire) {
    case 0:
        return read_varint(pp, end, varint);
    case 1:
        if (end - *pp < 8)
            return -1;
        *pp += 8;
        return 0;
    case 5:
        if (end - *pp < 4)
            return -1;
        *pp += 4;
        return 0;
    case 2:
        if (read_varint(pp, end, &n) < 0 || n > (uint64_t)(end - *pp))
            return -1;
        *val = *pp;
        *len = (size_t)n;
        *pp += n;
        return 0;
    default: /* groups never occur in TF graphs */
        return -1;
    }
}

/* The fields of one message, in order: `while ((rc = next_field(&f)) > 0) { use f.number, f.wire, f.val,
 * f.len }`; rc is 0 at the end and -1 on bad wire format. f.start is where the current field begins. */
typedef struct {
    ptr_t p, end, start, val;
    uint64_t number, varint;
    int wire;
    size_t len;
} fields_t;

static fields_t fields(ptr_t p, ptr_t end)
{
    fields_t f = {p, end, p, NULL, 0, 0, 0, 0};
    return f;
}

static int next_field(fields_t *f)
{
    if (f->p >= f->end)
        return 0;
    f->start = f->p;
    f->val = NULL;
    f->len = 0;
    return read_field(&f->p, f->end, &f->number, &f->wire, &f->val, &f->len, &f->varint) < 0 ? -1 : 1;
}

static int bad(const char *what)
{
    PyErr_SetString(PyExc_ValueError, what);
    return -1;
}

/* Append each "loc:@X" of an AttrValue's list.s to `out` (cleared when another oneof member follows). */
static int scan_class(ptr_t p, ptr_t end, PyObject *out)
{
    fields_t attr = fields(p, end);
    int rc;
    while ((rc = next_field(&attr)) > 0) {
        if (attr.number == 1 && attr.wire == 2) {
            fields_t list = fields(attr.val, attr.val + attr.len);
            while ((rc = next_field(&list)) > 0) {
                if (list.number == 2 && list.wire == 2 && list.len >= 5 && memcmp(list.val, "loc:@", 5) == 0) {
                    PyObject *name = PyUnicode_DecodeUTF8((const char *)list.val + 5, (Py_ssize_t)list.len - 5,
                                                          "strict");
                    if (name == NULL)
                        return -1;
                    int appended = PyList_Append(out, name);
                    Py_DECREF(name);
                    if (appended < 0)
                        return -1;
                }
            }
            if (rc < 0)
                return bad("bad _class list");
        } else if (attr.number >= 2 && attr.number <= 10) {
            if (PyList_SetSlice(out, 0, PyList_GET_SIZE(out), NULL) < 0)
                return -1;
        }
    }
    return rc < 0 ? bad("bad _class attr") : 0;
}

static PyObject *decode(ptr_t s, size_t len)
{
    return PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)len, "strict");
}

/* Strings seen so far, by their bytes: each op and attr name is decoded once and shared by its nodes, and each
 * node name by the inputs that name it -- the scan costs about what decoding each would, and every later lookup of
 * an input among the names is then a pointer comparison (on a 100,000-node optimize, a tenth of the time). */
typedef struct {
    ptr_t bytes;
    size_t len;
    uint64_t hash;
    PyObject *obj; /* a reference owned by the table */
} slot_t;

typedef struct {
    slot_t *slots;
    size_t capacity, used; /* capacity: a power of two */
} strings_t;

static uint64_t fnv1a(ptr_t s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static int strings_grow(strings_t *t)
{
    size_t capacity = t->capacity ? t->capacity * 2 : 256;
    slot_t *slots = PyMem_Calloc(capacity, sizeof(slot_t));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < t->capacity; i++) {
        slot_t *old = &t->slots[i];
        if (old->obj == NULL)
            continue;
        size_t j = (size_t)old->hash & (capacity - 1);
        while (slots[j].obj != NULL)
            j = (j + 1) & (capacity - 1);
        slots[j] = *old;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->capacity = capacity;
    return 0;
}

static void strings_free(strings_t *t)
{
    for (size_t i = 0; i < t->capacity; i++)
        Py_XDECREF(t->slots[i].obj);
    PyMem_Free(t->slots);
}

/* A new reference to the str of these UTF-8 bytes, shared with earlier equal ones. */
static PyObject *string(strings_t *t, ptr_t s, size_t len)
{
    if (2 * (t->used + 1) > t->capacity && strings_grow(t) < 0)
        return PyErr_NoMemory();
    uint64_t h = fnv1a(s, len);
    size_t j = (size_t)h & (t->capacity - 1);
    for (;; j = (j + 1) & (t->capacity - 1)) {
        slot_t *slot = &t->slots[j];
        if (slot->obj == NULL)
            break;
        if (slot->hash == h && slot->len == len && memcmp(slot->bytes, s, len) == 0) {
            Py_INCREF(slot->obj);
            return slot->obj;
        }
    }
    PyObject *obj = decode(s, len);
    if (obj == NULL)
        return NULL;
    slot_t *slot = &t->slots[j];
    slot->bytes = s;
    slot->len = len;
    slot->hash = h;
    slot->obj = obj;
    Py_INCREF(obj);
    t->used++;
    return obj;
}

/* A node's attr names as they are read: borrowed from the strings table (which lives as long as the scan). */
typedef struct {
    PyObject **at;
    size_t count, capacity;
} keys_t;

/* One attr map entry: key (1) and value (2), in either order. `*colocated` is made on the first _class;
 * the key is appended to `keys` (shared strings from `seen`). */
static int scan_attr(ptr_t p, ptr_t end, unsigned char *flags, PyObject **colocated, strings_t *seen, keys_t *keys)
{
    ptr_t key = NULL, value = NULL;
    size_t key_len = 0, value_len = 0;
    fields_t entry = fields(p, end);
    int rc;
    while ((rc = next_field(&entry)) > 0) {
        if (entry.number == 1 && entry.wire == 2) {
            key = entry.val;
            key_len = entry.len;
        } else if (entry.number == 2 && entry.wire == 2) {
            value = entry.val; /* a repeated value field would merge; not seen in TF graphs */
            value_len = entry.len;
        }
    }
    if (rc < 0)
        return bad("bad attr entry");
    PyObject *key_obj = string(seen, key ? key : (ptr_t) "", key_len);
    if (key_obj == NULL)
        return -1;
    Py_DECREF(key_obj); /* (the table keeps it) */
    if (keys->count == keys->capacity) {
        size_t capacity = keys->capacity ? keys->capacity * 2 : 16;
        PyObject **grown = PyMem_Realloc(keys->at, capacity * sizeof(PyObject *));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        keys->at = grown;
        keys->capacity = capacity;
    }
    keys->at[keys->count++] = key_obj;
    if (key_len == 14 && memcmp(key, "_output_shapes", 14) == 0) {
        *flags |= 1;
    } else if (key_len == 6 && memcmp(key, "_class", 6) == 0) {
        *flags |= 2;
        if (*colocated == NULL && (*colocated = PyList_New(0)) == NULL)
            return -1;
        if (PyList_SetSlice(*colocated, 0, PyList_GET_SIZE(*colocated), NULL) < 0)
            return -1;
        if (value != NULL && scan_class(value, value + value_len, *colocated) < 0)
            return -1;
    }
    return 0;
}

/* Tuples of attr names made so far, by their strings' addresses: the nodes of one kind share one tuple. */
typedef struct {
    PyObject **slots; /* owned references, NULL when free */
    uint64_t *hashes;
    size_t capacity, used; /* capacity: a power of two */
} tuples_t;

static uint64_t keys_hash(const keys_t *keys)
{
    uint64_t h = 1469598103934665603ULL ^ keys->count;
    for (size_t i = 0; i < keys->count; i++)
        h = (h ^ (uint64_t)(uintptr_t)keys->at[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int tuples_grow(tuples_t *t)
{
    size_t capacity = t->capacity ? t->capacity * 2 : 64;
    PyObject **slots = PyMem_Calloc(capacity, sizeof(PyObject *));
    uint64_t *hashes = PyMem_Calloc(capacity, sizeof(uint64_t));
    if (slots == NULL || hashes == NULL) {
        PyMem_Free(slots);
        PyMem_Free(hashes);
        return -1;
    }
    for (size_t i = 0; i < t->capacity; i++) {
        if (t->slots[i] == NULL)
            continue;
        size_t j = (size_t)t->hashes[i] & (capacity - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (capacity - 1);
        slots[j] = t->slots[i];
        hashes[j] = t->hashes[i];
    }
    PyMem_Free(t->slots);
    PyMem_Free(t->hashes);
    t->slots = slots;
    t->hashes = hashes;
    t->capacity = capacity;
    return 0;
}

static void tuples_free(tuples_t *t)
{
    for (size_t i = 0; i < t->capacity; i++)
        Py_XDECREF(t->slots[i]);
    PyMem_Free(t->slots);
    PyMem_Free(t->hashes);
}

/* A new reference to the tuple of these attr names, shared with earlier nodes that have the same ones. */
static PyObject *keys_tuple(tuples_t *t, const keys_t *keys)
{
    if (2 * (t->used + 1) > t->capacity && tuples_grow(t) < 0)
        return PyErr_NoMemory();
    uint64_t h = keys_hash(keys);
    size_t j = (size_t)h & (t->capacity - 1);
    for (;; j = (j + 1) & (t->capacity - 1)) {
        PyObject *tuple = t->slots[j];
        if (tuple == NULL)
            break;
        if (t->hashes[j] != h || (size_t)PyTuple_GET_SIZE(tuple) != keys->count)
            continue;
        size_t i = 0;
        while (i < keys->count && PyTuple_GET_ITEM(tuple, (Py_ssize_t)i) == keys->at[i])
            i++;
        if (i == keys->count) {
            Py_INCREF(tuple);
            return tuple;
        }
    }
    PyObject *tuple = PyTuple_New((Py_ssize_t)keys->count);
    if (tuple == NULL)
        return NULL;
    for (size_t i = 0; i < keys->count; i++) {
        Py_INCREF(keys->at[i]);
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)i, keys->at[i]);
    }
    if (PyObject_GC_IsTracked(tuple))
        PyObject_GC_UnTrack(tuple);
    t->slots[j] = tuple;
    t->hashes[j] = h;
    t->used++;
    Py_INCREF(tuple);
    return tuple;
}

typedef struct {
    PyObject *names, *positions, *inputs, *ops, *duplicates, *shaped, *colocated, *header, *attrs, *devices;
    int64_t *spans; /* 3 per node */
    Py_ssize_t count, capacity;
    strings_t ops_seen;
    strings_t names_seen; /* node names and input strings: an input naming a node shares its str */
    keys_t keys;          /* the node being read's attr names */
    tuples_t key_tuples;
    ptr_t *input_at; /* one node's input strings: pointer and length pairs, reused */
    size_t input_capacity;
} result_t;

static int grow(result_t *r)
{
    if (r->count < r->capacity)
        return 0;
    Py_ssize_t cap = r->capacity ? r->capacity * 2 : 1024;
    int64_t *spans = PyMem_Realloc(r->spans, (size_t)cap * 3 * sizeof(int64_t));
    if (spans == NULL)
        return -1;
    r->spans = spans;
    r->capacity = cap;
    return 0;
}

/* dict[key] = value, or del dict[key] when value is NULL */
static int set_or_del(PyObject *dict, PyObject *key, PyObject *value)
{
    if (value != NULL)
        return PyDict_SetItem(dict, key, value);
    int has = PyDict_Contains(dict, key);
    return has <= 0 ? has : PyDict_DelItem(dict, key);
}

static int scan_node(ptr_t base, ptr_t field_start, ptr_t p, ptr_t end, result_t *r)
{
    ptr_t name = (ptr_t) "", op = (ptr_t) "", device = (ptr_t) "";
    size_t name_len = 0, op_len = 0, device_len = 0, n_inputs = 0;
    unsigned char flags = 0;
    PyObject *inputs = NULL, *colocated = NULL, *name_obj = NULL, *op_obj = NULL, *position = NULL;
    PyObject *key_tuple = NULL;
    fields_t f = fields(p, end);
    r->keys.count = 0;
    int ok = -1, rc;
    while ((rc = next_field(&f)) > 0) {
        if (f.number <= 5 && f.wire != 2) {
            bad("NodeDef field with the wrong wire type");
            goto done;
        }
        if (f.number == 1) {
            name = f.val;
            name_len = f.len;
        } else if (f.number == 2) {
            op = f.val;
            op_len = f.len;
        } else if (f.number == 4) {
            device = f.val;
            device_len = f.len;
        } else if (f.number == 3) {
            if (2 * (n_inputs + 1) > r->input_capacity) {
                size_t capacity = r->input_capacity ? r->input_capacity * 2 : 64;
                ptr_t *grown = PyMem_Realloc(r->input_at, capacity * sizeof(ptr_t));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                r->input_at = grown;
                r->input_capacity = capacity;
            }
            r->input_at[2 * n_inputs] = f.val;
            r->input_at[2 * n_inputs + 1] = f.val + f.len;
            n_inputs++;
        } else if (f.number == 5) {
            if (scan_attr(f.val, f.val + f.len, &flags, &colocated, &r->ops_seen, &r->keys) < 0)
                goto done;
        }
    }
    if (rc < 0) {
        bad("bad NodeDef");
        goto done;
    }
    name_obj = string(&r->names_seen, name, name_len);
    op_obj = name_obj ? string(&r->ops_seen, op, op_len) : NULL;
    inputs = op_obj ? PyTuple_New((Py_ssize_t)n_inputs) : NULL;
    if (inputs == NULL)
        goto done;
    for (size_t i = 0; i < n_inputs; i++) {
        ptr_t at = r->input_at[2 * i];
        PyObject *text = string(&r->names_seen, at, (size_t)(r->input_at[2 * i + 1] - at));
        if (text == NULL)
            goto done;
        PyTuple_SET_ITEM(inputs, (Py_ssize_t)i, text);
    }
    /* A tuple of str cannot be part of a cycle: untracked, the 100,000s of them cost the cyclic GC nothing
     * (and the dict holding them stays untracked too). */
    if (PyObject_GC_IsTracked(inputs))
        PyObject_GC_UnTrack(inputs);
    if (grow(r) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if ((position = PyLong_FromSsize_t(r->count)) == NULL || (key_tuple = keys_tuple(&r->key_tuples, &r->keys)) == NULL)
        goto done;
    if (device_len) { /* each distinct device string once, with the first node that has it */
        PyObject *device_obj = string(&r->ops_seen, device, device_len);
        int added = device_obj ? PyDict_SetDefault(r->devices, device_obj, name_obj) != NULL : 0;
        Py_XDECREF(device_obj);
        if (!added)
            goto done;
    }
    int seen = PyDict_Contains(r->positions, name_obj);
    int has_colocations = colocated != NULL && PyList_GET_SIZE(colocated) > 0;
    if (seen < 0 || (seen && PyList_Append(r->duplicates, name_obj) < 0) ||
        PyDict_SetItem(r->positions, name_obj, position) < 0 || PyList_Append(r->names, name_obj) < 0 ||
        PyDict_SetItem(r->inputs, name_obj, inputs) < 0 || PyDict_SetItem(r->ops, name_obj, op_obj) < 0 ||
        PyDict_SetItem(r->attrs, name_obj, key_tuple) < 0 ||
        ((has_colocations || seen) && set_or_del(r->colocated, name_obj, has_colocations ? colocated : NULL) < 0) ||
        ((flags & 1) ? PySet_Add(r->shaped, name_obj) : (seen ? PySet_Discard(r->shaped, name_obj) : 0)) < 0)
        goto done;
    r->spans[r->count * 3] = field_start - base;
    r->spans[r->count * 3 + 1] = p - base;
    r->spans[r->count * 3 + 2] = end - base;
    r->count++;
    ok = 0;
done:
    Py_XDECREF(key_tuple);
    Py_XDECREF(inputs);
    Py_XDECREF(colocated);
    Py_XDECREF(name_obj);
    Py_XDECREF(op_obj);
    Py_XDECREF(position);
    return ok;
}

static PyObject *scan_graph(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *out = NULL;
    result_t r;
    memset(&r, 0, sizeof r);
    (void)self;
    if (!PyArg_ParseTuple(args, "y*:scan_graph", &view))
        return NULL;
    ptr_t base = (ptr_t)view.buf;
    r.names = PyList_New(0);
    r.positions = PyDict_New();
    r.inputs = PyDict_New();
    r.ops = PyDict_New();
    r.duplicates = PyList_New(0);
    r.shaped = PySet_New(NULL);
    r.colocated = PyDict_New();
    r.header = PyList_New(0);
    r.attrs = PyDict_New();
    r.devices = PyDict_New();
    if (!r.names || !r.positions || !r.inputs || !r.ops || !r.duplicates || !r.shaped || !r.colocated || !r.header ||
        !r.attrs || !r.devices)
        goto done;
    fields_t f = fields(base, base + view.len);
    int rc;
    while ((rc = next_field(&f)) > 0) {
        if (f.number == 1) {
            if (f.wire != 2) {
                bad("GraphDef node field with the wrong wire type");
                goto done;
            }
            if (scan_node(base, f.start, f.val, f.val + f.len, &r) < 0)
                goto done;
        } else {
            PyObject *item = Py_BuildValue("(Knn)", (unsigned long long)f.number, (Py_ssize_t)(f.start - base),
                                           (Py_ssize_t)(f.p - base));
            if (item == NULL)
                goto done;
            int appended = PyList_Append(r.header, item);
            Py_DECREF(item);
            if (appended < 0)
                goto done;
        }
    }
    if (rc < 0) {
        bad("not a valid GraphDef (truncated or corrupt)");
        goto done;
    }
    out = Py_BuildValue("(OOOOOy#OOOOO)", r.names, r.positions, r.inputs, r.ops, r.duplicates,
                        r.spans ? (const char *)r.spans : "", r.count * 3 * (Py_ssize_t)sizeof(int64_t), r.shaped,
                        r.colocated, r.header, r.attrs, r.devices);
done:
    PyBuffer_Release(&view);
    Py_XDECREF(r.names);
    Py_XDECREF(r.positions);
    Py_XDECREF(r.inputs);
    Py_XDECREF(r.ops);
    Py_XDECREF(r.duplicates);
    Py_XDECREF(r.shaped);
    Py_XDECREF(r.colocated);
    Py_XDECREF(r.header);
    Py_XDECREF(r.attrs);
    Py_XDECREF(r.devices);
    PyMem_Free(r.spans);
    PyMem_Free(r.input_at);
    strings_free(&r.ops_seen);
    strings_free(&r.names_seen);
    tuples_free(&r.key_tuples);
    PyMem_Free(r.keys.at);
    return out;
}

/* node_names(buffer) -> (names, spans, header): only each node's name and byte span, and the top-level
 * non-node fields -- what a comparison of two files needs (diff: nodes with equal bytes are equal), at a
 * fraction of scan_graph's cost. */
static PyObject *node_names(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *out = NULL;
    result_t r;
    memset(&r, 0, sizeof r);
    (void)self;
    if (!PyArg_ParseTuple(args, "y*:node_names", &view))
        return NULL;
    ptr_t base = (ptr_t)view.buf;
    r.names = PyList_New(0);
    r.header = PyList_New(0);
    if (!r.names || !r.header)
        goto done;
    fields_t f = fields(base, base + view.len);
    int rc;
    while ((rc = next_field(&f)) > 0) {
        if (f.number != 1) {
            PyObject *item = Py_BuildValue("(Knn)", (unsigned long long)f.number, (Py_ssize_t)(f.start - base),
                                           (Py_ssize_t)(f.p - base));
            int appended = item ? PyList_Append(r.header, item) : -1;
            Py_XDECREF(item);
            if (appended < 0)
                goto done;
            continue;
        }
        if (f.wire != 2) {
            bad("GraphDef node field with the wrong wire type");
            goto done;
        }
        ptr_t name = (ptr_t) "";
        size_t name_len = 0;
        fields_t g = fields(f.val, f.val + f.len);
        int rc2;
        while ((rc2 = next_field(&g)) > 0) {
            if (g.number == 1) {
                if (g.wire != 2) {
                    bad("NodeDef field with the wrong wire type");
                    goto done;
                }
                name = g.val; /* the last one wins, as in protobuf */
                name_len = g.len;
            }
        }
        if (rc2 < 0) {
            bad("bad NodeDef");
            goto done;
        }
        PyObject *text = decode(name, name_len);
        int appended = text ? PyList_Append(r.names, text) : -1;
        Py_XDECREF(text);
        if (appended < 0 || grow(&r) < 0)
            goto done;
        r.spans[r.count * 3] = f.start - base;
        r.spans[r.count * 3 + 1] = f.val - base;
        r.spans[r.count * 3 + 2] = f.p - base;
        r.count++;
    }
    if (rc < 0) {
        bad("not a valid GraphDef (truncated or corrupt)");
        goto done;
    }
    out = Py_BuildValue("(Oy#O)", r.names, r.spans ? (const char *)r.spans : "",
                        r.count * 3 * (Py_ssize_t)sizeof(int64_t), r.header);
done:
    PyBuffer_Release(&view);
    Py_XDECREF(r.names);
    Py_XDECREF(r.header);
    PyMem_Free(r.spans);
    return out;
}

/* ---- check(): the wire form validated against a schema ---- */

enum { K_VARINT, K_FIXED64, K_FIXED32, K_BYTES, K_STRING, K_MESSAGE, K_DTYPE, K_GROUP };

typedef struct {
    const int32_t *words;
    Py_ssize_t count; /* int32 words */
    const unsigned char *dtypes;
    Py_ssize_t dtype_bits;
    int max_depth;
    int tensor_msg;               /* the schema's TensorProto: each one is also checked for soundness */
    int shape_msg;                /* TensorShapeProto: no dimension below -1 */
    int attr_msg;                 /* AttrValue: one value set (TF refuses an attr with none) */
    int entry_msg;                /* NodeDef.AttrEntry: a value present (protobuf hides an entry without) */
    int node_msg;                 /* NodeDef: a Const's value of its dtype attr's type (else TF aborts) */
    const unsigned char *itemsize; /* bytes per element by DataType (0: not a fixed size) */
    Py_ssize_t itemsize_count;
} schema_t;

/* Strict UTF-8 as protobuf (utf8_range) and Python read it: no overlong forms, surrogates or code points
 * past U+10FFFF. */
static int valid_utf8(ptr_t s, size_t len)
{
    ptr_t end = s + len;
    while (s < end) {
        unsigned char c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - s) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        s += n + 1;
    }
    return 1;
}

static int valid_dtype(const schema_t *schema, uint64_t value)
{
    return value < (uint64_t)schema->dtype_bits && (schema->dtypes[value >> 3] >> (value & 7)) & 1;
}

/* The (kind, sub-message) of field `number` of message `msg`; kind -1 for a field the schema lacks. */
static int field_kind(const schema_t *schema, int msg, uint64_t number, int *sub)
{
    const int32_t *w = schema->words;
    int32_t at = w[1 + msg], n = w[at];
    for (int32_t i = 0; i < n; i++) {
        const int32_t *entry = w + at + 1 + 3 * i;
        if ((uint64_t)entry[0] == number) {
            *sub = entry[2];
            return entry[1];
        }
    }
    return -1;
}

/* A TensorProto TF could build (graphkit.io.graph.tensor_problem says the same in Python): known rank, no
 * negative dimension, fewer than 2^63 elements, tensor_content (when set) of exactly the shape's bytes.
 * Called after check_message validated its wire form. */
static int check_tensor(const schema_t *schema, ptr_t p, ptr_t end)
{
    uint64_t dtype = 0, content = 0, count = 1;
    int has_content = 0;
    fields_t f = fields(p, end);
    while (next_field(&f) > 0) {
        if (f.number == 1 && f.wire == 0) {
            dtype = f.varint;
        } else if (f.number == 4 && f.wire == 2) {
            content = f.len;
            has_content = f.len > 0;
        } else if (f.number == 2 && f.wire == 2) {
            count = 1;
            fields_t shape = fields(f.val, f.val + f.len);
            while (next_field(&shape) > 0) {
                if (shape.number == 3 && shape.wire == 0 && shape.varint)
                    return bad("a tensor of unknown rank");
                if (shape.number != 2 || shape.wire != 2)
                    continue;
                int64_t size = 0;
                fields_t dim = fields(shape.val, shape.val + shape.len);
                while (next_field(&dim) > 0)
                    if (dim.number == 1 && dim.wire == 0)
                        size = (int64_t)dim.varint;
                if (size < 0)
                    return bad("a tensor with a negative dimension");
                if (size && count > (uint64_t)INT64_MAX / (uint64_t)size)
                    return bad("a tensor with more elements than int64 counts");
                count *= (uint64_t)size;
            }
        }
    }
    uint64_t base = dtype >= 100 ? dtype - 100 : dtype;
    unsigned char size = base < (uint64_t)schema->itemsize_count ? schema->itemsize[base] : 0;
    if (has_content && size && (count > UINT64_MAX / size || content != count * size))
        return bad("a tensor whose tensor_content is not its shape's size");
    return 0;
}

/* The varint of field `number` in a message, or -1 when it has none (the last one wins). */
static int64_t varint_field(ptr_t p, ptr_t end, uint64_t number)
{
    int64_t out = -1;
    fields_t f = fields(p, end);
    while (next_field(&f) > 0)
        if (f.number == number && f.wire == 0)
            out = (int64_t)f.varint;
    return out;
}

/* A Const NodeDef whose `value` tensor has another dtype than its `dtype` attr (TF's Const kernel refuses
 * it, and its shape inference can abort the process first). Called on a NodeDef check_message passed. */
static int check_const(ptr_t p, ptr_t end)
{
    int is_const = 0;
    int64_t dtype = -1, value_dtype = -1;
    fields_t f = fields(p, end);
    while (next_field(&f) > 0) {
        if (f.number == 2 && f.wire == 2) {
            is_const = f.len == 5 && memcmp(f.val, "Const", 5) == 0;
        } else if (f.number == 5 && f.wire == 2) {
            ptr_t key = NULL, value = NULL;
            size_t key_len = 0, value_len = 0;
            fields_t entry = fields(f.val, f.val + f.len);
            while (next_field(&entry) > 0) {
                if (entry.number == 1 && entry.wire == 2)
                    key = entry.val, key_len = entry.len;
                else if (entry.number == 2 && entry.wire == 2)
                    value = entry.val, value_len = entry.len;
            }
            if (key == NULL || value == NULL)
                continue;
            if (key_len == 5 && memcmp(key, "dtype", 5) == 0) {
                dtype = varint_field(value, value + value_len, 6);
            } else if (key_len == 5 && memcmp(key, "value", 5) == 0) {
                fields_t attr = fields(value, value + value_len);
                while (next_field(&attr) > 0)
                    if (attr.number == 8 && attr.wire == 2) {
                        value_dtype = varint_field(attr.val, attr.val + attr.len, 1);
                        if (value_dtype < 0)
                            value_dtype = 0; /* DT_INVALID, unset */
                    }
            }
        }
    }
    if (is_const && dtype >= 0 && value_dtype >= 0 && dtype != value_dtype)
        return bad("a Const whose value has another dtype than its dtype attr");
    return 0;
}

static int check_message(const schema_t *schema, int msg, ptr_t p, ptr_t end, int depth)
{
    if (depth > schema->max_depth)
        return bad("nested deeper than the scanner checks");
    fields_t f = fields(p, end);
    int rc;
    while ((rc = next_field(&f)) > 0) {
        int sub = 0, kind = field_kind(schema, msg, f.number, &sub);
        if (kind < 0)
            continue; /* an unknown field: protobuf keeps its bytes, which next_field has delimited */
        if (f.wire == 2) {
            ptr_t v = f.val, v_end = f.val + f.len;
            switch (kind) {
            case K_BYTES:
                break;
            case K_STRING:
                if (!valid_utf8(v, f.len))
                    return bad("a string field that is not UTF-8");
                break;
            case K_MESSAGE:
                if (check_message(schema, sub, v, v_end, depth + 1) < 0)
                    return -1;
                break;
            case K_VARINT:
            case K_DTYPE: /* packed */
                while (v < v_end) {
                    uint64_t value;
                    if (read_varint(&v, v_end, &value) < 0)
                        return bad("a bad packed varint");
                    if (kind == K_DTYPE && !valid_dtype(schema, value))
                        return bad("an unknown DataType");
                }
                break;
            case K_FIXED64:
            case K_FIXED32:
                if (f.len % (kind == K_FIXED64 ? 8 : 4))
                    return bad("a packed fixed-size field of the wrong length");
                break;
            default:
                return bad("a field of an unexpected kind");
            }
        } else if (f.wire == 0 && (kind == K_VARINT || kind == K_DTYPE)) {
            if (kind == K_DTYPE && !valid_dtype(schema, f.varint))
                return bad("an unknown DataType");
        } else if (!((f.wire == 1 && kind == K_FIXED64) || (f.wire == 5 && kind == K_FIXED32))) {
            return bad("a field with an unexpected wire type");
        }
    }
    if (rc < 0)
        return bad("not valid wire format");
    if (msg == schema->tensor_msg)
        return check_tensor(schema, p, end);
    if (msg == schema->node_msg)
        return check_const(p, end);
    if (msg == schema->entry_msg) {
        int has_value = 0;
        f = fields(p, end);
        while (next_field(&f) > 0)
            has_value |= f.number == 2 && f.wire == 2;
        if (!has_value)
            return bad("an attr with no value");
    }
    if (msg == schema->shape_msg || msg == schema->attr_msg) {
        int valued = 0;
        f = fields(p, end);
        while (next_field(&f) > 0) {
            int unused;
            valued |= field_kind(schema, msg, f.number, &unused) >= 0; /* an unknown field is no value */
            if (msg == schema->shape_msg && f.number == 2 && f.wire == 2) {
                fields_t dim = fields(f.val, f.val + f.len);
                while (next_field(&dim) > 0)
                    if (dim.number == 1 && dim.wire == 0 && (int64_t)dim.varint < -1)
                        return bad("a shape with a dimension below -1");
            }
        }
        if (msg == schema->attr_msg && !valued)
            return bad("an attr with no value");
    }
    return 0;
}

static PyObject *check(PyObject *self, PyObject *args)
{
    Py_buffer view, words, dtypes, itemsize;
    int max_depth, tensor_msg, shape_msg, attr_msg, entry_msg, node_msg, ok = -1;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*i(iiiii)y*:check", &view, &words, &dtypes, &max_depth, &tensor_msg,
                          &shape_msg, &attr_msg, &entry_msg, &node_msg, &itemsize))
        return NULL;
    schema_t schema = {(const int32_t *)words.buf, words.len / 4, (const unsigned char *)dtypes.buf, dtypes.len * 8,
                       max_depth, tensor_msg, shape_msg, attr_msg, entry_msg, node_msg,
                       (const unsigned char *)itemsize.buf, itemsize.len};
    /* the schema is ours, but an out-of-range offset would read past it: check it once */
    const int32_t *w = schema.words;
    int valid = schema.count >= 2 && w[0] >= 1 && w[0] < schema.count;
    for (int32_t m = 0; valid && m < w[0]; m++) {
        int32_t at = w[1 + m];
        valid = at > w[0] && at < schema.count && w[at] >= 0 && (Py_ssize_t)at + 1 + 3 * (Py_ssize_t)w[at] <= schema.count;
        for (int32_t i = 0; valid && i < w[at]; i++) {
            const int32_t *entry = w + at + 1 + 3 * i;
            valid = entry[1] >= K_VARINT && entry[1] <= K_GROUP && (entry[1] != K_MESSAGE || (entry[2] >= 0 && entry[2] < w[0]));
        }
    }
    if (!valid)
        PyErr_SetString(PyExc_ValueError, "malformed schema");
    else
        ok = check_message(&schema, 0, (ptr_t)view.buf, (ptr_t)view.buf + view.len, 0);
    PyBuffer_Release(&view);
    PyBuffer_Release(&words);
    PyBuffer_Release(&dtypes);
    PyBuffer_Release(&itemsize);
    if (ok < 0)
        return NULL;
    Py_RETURN_NONE;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static unsigned char *put_varint(unsigned char *out, uint64_t v)
{
    while (v >= 0x80) {
        *out++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *out++ = (unsigned char)v;
    return out;
}

/* Each of `inputs` (a PySequence_Fast of str, each already encoded once: PyUnicode_AsUTF8AndSize caches
 * the UTF-8) as field 3. */
static unsigned char *put_inputs(unsigned char *w, PyObject *inputs)
{
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(inputs); i++) {
        Py_ssize_t len;
        const char *text = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(inputs, i), &len);
        *w++ = 0x1a;
        w = put_varint(w, (uint64_t)len);
        memcpy(w, text, (size_t)len);
        w += len;
    }
    return w;
}

/* The NodeDef span [start, stop) of buffer with its inputs replaced by the str sequence `inputs`, written at
 * w (or, with w NULL, only measured): returns the bytes it takes, or -1 on error. */
static Py_ssize_t spliced_node(ptr_t base, Py_ssize_t start, Py_ssize_t stop, PyObject *inputs, unsigned char *w)
{
    size_t added = 0, kept = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(inputs); i++) {
        Py_ssize_t len;
        PyObject *text = PySequence_Fast_GET_ITEM(inputs, i);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "an input is not a str");
            return -1;
        }
        if (PyUnicode_AsUTF8AndSize(text, &len) == NULL)
            return -1;
        added += 1 + varint_size((uint64_t)len) + (size_t)len;
    }
    fields_t f = fields(base + start, base + stop);
    int rc;
    while ((rc = next_field(&f)) > 0)
        if (f.number != 3)
            kept += (size_t)(f.p - f.start);
    if (rc < 0)
        return bad("bad NodeDef");
    size_t payload = kept + added, total = 1 + varint_size(payload) + payload;
    if (w == NULL)
        return (Py_ssize_t)total;
    *w++ = 0x0a;
    w = put_varint(w, payload);
    int written = 0;
    f = fields(base + start, base + stop);
    while (next_field(&f) > 0) {
        if (!written && f.number >= 3) {
            w = put_inputs(w, inputs);
            written = 1;
        }
        if (f.number != 3) {
            memcpy(w, f.start, (size_t)(f.p - f.start));
            w += f.p - f.start;
        }
    }
    if (!written)
        put_inputs(w, inputs);
    return (Py_ssize_t)total;
}

/* with_inputs(buffer, start, end, inputs) -> bytes: the NodeDef at buffer[start:end] with its input fields
 * (field 3) replaced by `inputs` (str), written where its first input was (or before the first later field),
 * every other field copied as it is; returned as a whole GraphDef node field (tag, length, payload), what
 * writing a rewired node needs without parsing it. ValueError on bad wire format. */
static PyObject *with_inputs(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, stop, size;
    PyObject *given, *inputs = NULL, *out = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnO:with_inputs", &view, &start, &stop, &given))
        return NULL;
    inputs = PySequence_Fast(given, "inputs must be a sequence of str");
    if (inputs == NULL)
        goto done;
    if (start < 0 || stop < start || stop > view.len) {
        PyErr_SetString(PyExc_ValueError, "span outside the buffer");
        goto done;
    }
    size = spliced_node((ptr_t)view.buf, start, stop, inputs, NULL);
    out = size < 0 ? NULL : PyBytes_FromStringAndSize(NULL, size);
    if (out != NULL)
        spliced_node((ptr_t)view.buf, start, stop, inputs, (unsigned char *)PyBytes_AS_STRING(out));
done:
    Py_XDECREF(inputs);
    PyBuffer_Release(&view);
    return out;
}

/* dict[key] as a borrowed reference, or NULL with KeyError (or the lookup's error) set. */
static PyObject *item(PyObject *dict, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(dict, key);
    if (value == NULL && !PyErr_Occurred())
        PyErr_SetObject(PyExc_KeyError, key);
    return value;
}

/* Mark the file position of each name of `names` (an iterable) with `kind` (positions: name -> int). */
static int mark(PyObject *names, PyObject *positions, Py_ssize_t count, unsigned char *kinds, unsigned char kind)
{
    PyObject *iter = PyObject_GetIter(names), *name;
    if (iter == NULL)
        return -1;
    while ((name = PyIter_Next(iter)) != NULL) {
        PyObject *at = item(positions, name);
        Py_ssize_t p = at ? PyLong_AsSsize_t(at) : -1;
        Py_DECREF(name);
        if (at == NULL || (p == -1 && PyErr_Occurred())) {
            Py_DECREF(iter);
            return -1;
        }
        if (p >= 0 && p < count && kinds[p] != 0)
            kinds[p] = kind;
    }
    Py_DECREF(iter);
    return PyErr_Occurred() ? -1 : 0;
}

/* splice(buffer, spans, positions, fields, rewired, inputs) -> (bytes, new): the buffer (a GraphDef; spans:
 * scan_graph's int64 triples) written for an index's nodes: `positions` (name -> the node's place in the
 * file, -1 for a new node) says which file nodes stay and under what name; the node field of a name in
 * `fields` (dict: name -> bytes, a whole node field) is those bytes, of a name in `rewired` (a set) the
 * file's node with its inputs swapped for `inputs[name]` (as with_inputs); every other byte is copied (so
 * top-level fields keep their places). `new`: the names at -1, in order, for the caller to append. What
 * write_table does for a file read into memory. */
static PyObject *splice(PyObject *self, PyObject *args)
{
    Py_buffer view, spans;
    PyObject *positions, *fields, *rewired, *inputs, *out = NULL, *new = NULL, *result = NULL, *name, *at;
    PyObject **names = NULL, **seqs = NULL;
    unsigned char *kinds = NULL; /* per file node: 0 gone, 1 copied, 2 spliced, 3 a field given */
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*O!O!OO!:splice", &view, &spans, &PyDict_Type, &positions, &PyDict_Type,
                          &fields, &rewired, &PyDict_Type, &inputs))
        return NULL;
    Py_ssize_t count = spans.len / (Py_ssize_t)(3 * sizeof(int64_t)), k, pos = 0;
    const int64_t *span = (const int64_t *)spans.buf;
    ptr_t base = (ptr_t)view.buf;
    names = PyMem_Calloc((size_t)(count ? count : 1), sizeof(PyObject *)); /* borrowed */
    seqs = PyMem_Calloc((size_t)(count ? count : 1), sizeof(PyObject *));
    kinds = PyMem_Calloc((size_t)(count ? count : 1), 1);
    new = PyList_New(0);
    if (names == NULL || seqs == NULL || kinds == NULL || new == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    while (PyDict_Next(positions, &pos, &name, &at)) {
        Py_ssize_t p = PyLong_AsSsize_t(at);
        if (p == -1 && PyErr_Occurred())
            goto done;
        if (p < 0) {
            if (PyList_Append(new, name) < 0)
                goto done;
            continue;
        }
        if (p >= count || span[3 * p + 2] > view.len) {
            bad("a position past the file's nodes");
            goto done;
        }
        names[p] = name;
        kinds[p] = 1;
    }
    if (mark(rewired, positions, count, kinds, 2) < 0 || mark(fields, positions, count, kinds, 3) < 0)
        goto done;
    Py_ssize_t total = 0, from = 0;
    for (k = 0; k < count; k++) {  /* measure */
        if (kinds[k] == 1)
            continue;
        if (span[3 * k] < from) {
            bad("node spans overlap");
            goto done;
        }
        total += span[3 * k] - from;
        from = span[3 * k + 2];
        if (kinds[k] == 3) {
            PyObject *field = item(fields, names[k]);
            if (field == NULL || !PyBytes_Check(field)) {
                if (field != NULL)
                    PyErr_SetString(PyExc_TypeError, "a field is not bytes");
                goto done;
            }
            total += PyBytes_GET_SIZE(field);
        } else if (kinds[k] == 2) {
            PyObject *texts = item(inputs, names[k]);
            seqs[k] = texts ? PySequence_Fast(texts, "inputs must be sequences of str") : NULL;
            Py_ssize_t size = seqs[k] ? spliced_node(base, span[3 * k + 1], span[3 * k + 2], seqs[k], NULL) : -1;
            if (size < 0)
                goto done;
            total += size;
        }
    }
    total += view.len - from;
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        goto done;
    unsigned char *w = (unsigned char *)PyBytes_AS_STRING(out);
    from = 0;
    for (k = 0; k < count; k++) {  /* write */
        if (kinds[k] == 1)
            continue;
        memcpy(w, base + from, (size_t)(span[3 * k] - from));
        w += span[3 * k] - from;
        from = span[3 * k + 2];
        if (kinds[k] == 3) {
            PyObject *field = PyDict_GetItem(fields, names[k]);
            memcpy(w, PyBytes_AS_STRING(field), (size_t)PyBytes_GET_SIZE(field));
            w += PyBytes_GET_SIZE(field);
        } else if (kinds[k] == 2) {
            w += spliced_node(base, span[3 * k + 1], span[3 * k + 2], seqs[k], w);
        }
    }
    memcpy(w, base + from, (size_t)(view.len - from));
    result = PyTuple_Pack(2, out, new);
done:
    if (seqs != NULL) {
        for (k = 0; k < count; k++)
            Py_XDECREF(seqs[k]);
        PyMem_Free(seqs);
    }
    PyMem_Free(names);
    PyMem_Free(kinds);
    Py_XDECREF(out);
    Py_XDECREF(new);
    PyBuffer_Release(&view);
    PyBuffer_Release(&spans);
    return result;
}

/* same_bodies(buffer, spans, names, positions, skip, limit) -> dict[str, str]: among `names` (a list), the
 * nodes whose bytes in the file after their name field (op, inputs, device, attrs as written) are those of an
 * earlier one: each -> the first of its kind. `positions` (name -> place in the file; spans: scan_graph's
 * int64 triples) finds the bytes; a name at a negative place or held by any container of `skip` (a tuple:
 * the nodes changed since the file was read) is not compared, nor one whose name is not its first field or
 * whose rest is longer than `limit` (the caller compares those itself). Bytes are hashed (FNV-1a) and equal
 * hashes compared in full, so a result is never a collision. */
static PyObject *same_bodies(PyObject *self, PyObject *args)
{
    Py_buffer view, spans;
    PyObject *names, *positions, *skip, *out = NULL;
    Py_ssize_t limit;
    ptr_t *starts = NULL;
    size_t *lens = NULL;
    uint64_t *hashes = NULL;
    Py_ssize_t *table = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*O!O!O!n:same_bodies", &view, &spans, &PyList_Type, &names, &PyDict_Type,
                          &positions, &PyTuple_Type, &skip, &limit))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(names), k, nspans = spans.len / (Py_ssize_t)(3 * sizeof(int64_t));
    const int64_t *span = (const int64_t *)spans.buf;
    size_t slots = 16;
    while (slots < (size_t)count * 2)
        slots <<= 1;
    starts = PyMem_Malloc(sizeof(ptr_t) * (size_t)(count ? count : 1));
    lens = PyMem_Malloc(sizeof(size_t) * (size_t)(count ? count : 1));
    hashes = PyMem_Malloc(sizeof(uint64_t) * (size_t)(count ? count : 1));
    table = PyMem_Malloc(sizeof(Py_ssize_t) * slots);
    out = PyDict_New();
    if (!starts || !lens || !hashes || !table || !out) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < slots; i++)
        table[i] = -1;
    for (k = 0; k < count; k++) {
        PyObject *name = PyList_GET_ITEM(names, k), *at = item(positions, name);
        Py_ssize_t position = at ? PyLong_AsSsize_t(at) : -1, t;
        int skipped = position < 0;
        for (t = 0; t < PyTuple_GET_SIZE(skip) && !skipped; t++)
            skipped = PySequence_Contains(PyTuple_GET_ITEM(skip, t), name);
        starts[k] = NULL;
        if (at == NULL || skipped < 0 || PyErr_Occurred()) {
            Py_CLEAR(out);
            goto done;
        }
        if (skipped)
            continue;
        if (position >= nspans || span[3 * position + 2] > view.len) {
            Py_CLEAR(out);
            bad("node position outside the table");
            goto done;
        }
        ptr_t base = (ptr_t)view.buf;
        fields_t f = fields(base + span[3 * position + 1], base + span[3 * position + 2]);
        if (next_field(&f) > 0 && f.number == 1 && f.wire == 2 && (Py_ssize_t)(f.end - f.p) <= limit) {
            ptr_t body = f.p;
            size_t len = (size_t)(f.end - f.p);
            uint64_t h = fnv1a(body, len);
            starts[k] = body;
            lens[k] = len;
            hashes[k] = h;
            Py_ssize_t first = -1;
            size_t slot = (size_t)h & (slots - 1);
            while (table[slot] >= 0) {
                Py_ssize_t other = table[slot];
                if (hashes[other] == h && lens[other] == len && memcmp(starts[other], body, len) == 0) {
                    first = other;
                    break;
                }
                slot = (slot + 1) & (slots - 1);
            }
            if (first < 0)
                table[slot] = k;
            else if (PyDict_SetItem(out, name, PyList_GET_ITEM(names, first)) < 0) {
                Py_CLEAR(out);
                goto done;
            }
        }
    }
done:
    PyMem_Free(starts);
    PyMem_Free(lens);
    PyMem_Free(hashes);
    PyMem_Free(table);
    PyBuffer_Release(&view);
    PyBuffer_Release(&spans);
    return out;
}

/* The node an input string names, as a new reference: `text` itself for a bare name, else the part between
 * a leading '^' and the first ':'; *prefix / *suffix get the lengths around it (in code points). NULL on
 * error. */
static PyObject *input_name(PyObject *text, Py_ssize_t *prefix, Py_ssize_t *suffix)
{
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), start = 0, colon;
    if (len > 0 && PyUnicode_READ_CHAR(text, 0) == '^')
        start = 1;
    colon = PyUnicode_FindChar(text, ':', start, len, 1);
    if (colon == -2)
        return NULL;
    *prefix = start;
    *suffix = colon < 0 ? 0 : len - colon;
    if (start == 0 && colon < 0) {
        Py_INCREF(text);
        return text;
    }
    return PyUnicode_Substring(text, start, colon < 0 ? len : colon);
}

/* `texts` with each input naming a key of `twin` naming its value instead (following chains; port and '^'
 * kept): a new list, or None (a new reference to Py_None) when none does. NULL on error. */
static PyObject *renamed_inputs(PyObject *texts, PyObject *twin)
{
    PyObject *seq = PySequence_Fast(texts, "inputs must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i;
    PyObject *out = NULL;
    for (i = 0; i < n; i++) {
        PyObject *text = PySequence_Fast_GET_ITEM(seq, i), *name, *target, *next, *renamed;
        Py_ssize_t prefix, suffix;
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "an input is not a str");
            goto fail;
        }
        name = input_name(text, &prefix, &suffix);
        if (name == NULL)
            goto fail;
        target = PyDict_GetItemWithError(twin, name);
        Py_DECREF(name);
        if (target == NULL && PyErr_Occurred())
            goto fail;
        if (target != NULL) {
            int steps = 0;
            while ((next = PyDict_GetItemWithError(twin, target)) != NULL && steps++ < 1000000)
                target = next;
            if (PyErr_Occurred())
                goto fail;
        }
        if (target == NULL) {
            if (out != NULL) {
                Py_INCREF(text);
                PyList_SET_ITEM(out, i, text);
            }
            continue;
        }
        if (out == NULL) {
            Py_ssize_t j;
            out = PyList_New(n);
            if (out == NULL)
                goto fail;
            for (j = 0; j < i; j++) {
                PyObject *kept = PySequence_Fast_GET_ITEM(seq, j);
                Py_INCREF(kept);
                PyList_SET_ITEM(out, j, kept);
            }
        }
        if (prefix == 0 && suffix == 0) {
            Py_INCREF(target);
            renamed = target;
        } else {
            Py_ssize_t len = PyUnicode_GET_LENGTH(text);
            PyObject *head = PyUnicode_Substring(text, 0, prefix), *tail = PyUnicode_Substring(text, len - suffix, len);
            PyObject *joined = head && tail ? PyUnicode_Concat(head, target) : NULL;
            renamed = joined ? PyUnicode_Concat(joined, tail) : NULL;
            Py_XDECREF(head);
            Py_XDECREF(tail);
            Py_XDECREF(joined);
            if (renamed == NULL)
                goto fail;
        }
        PyList_SET_ITEM(out, i, renamed);
    }
    Py_DECREF(seq);
    if (out == NULL)
        Py_RETURN_NONE;
    return out;
fail:
    Py_DECREF(seq);
    Py_XDECREF(out);
    return NULL;
}

/* `texts` (a new list) with its control inputs named twice kept once: the data inputs in order, then each
 * control input at its first place (what a merge leaves when two control inputs now name one node). A new
 * reference; `texts` itself (a new reference) when nothing repeats. */
static PyObject *controls_once(PyObject *texts)
{
    Py_ssize_t n = PyList_GET_SIZE(texts), i, j, repeated = 0;
    for (i = 0; i < n && !repeated; i++) {
        PyObject *a = PyList_GET_ITEM(texts, i);
        if (PyUnicode_GET_LENGTH(a) == 0 || PyUnicode_READ_CHAR(a, 0) != '^')
            continue;
        for (j = i + 1; j < n && !repeated; j++) {
            int eq = PyUnicode_Compare(a, PyList_GET_ITEM(texts, j)) == 0;
            if (PyErr_Occurred())
                return NULL;
            repeated = eq;
        }
    }
    if (!repeated) {
        Py_INCREF(texts);
        return texts;
    }
    PyObject *out = PyList_New(0), *controls = PyList_New(0);
    if (out == NULL || controls == NULL)
        goto fail;
    for (i = 0; i < n; i++) {
        PyObject *a = PyList_GET_ITEM(texts, i);
        if (PyUnicode_GET_LENGTH(a) == 0 || PyUnicode_READ_CHAR(a, 0) != '^') {
            if (PyList_Append(out, a) < 0)
                goto fail;
            continue;
        }
        int known = PySequence_Contains(controls, a);
        if (known < 0 || (!known && PyList_Append(controls, a) < 0))
            goto fail;
    }
    if (PyList_SetSlice(out, PyList_GET_SIZE(out), PyList_GET_SIZE(out), controls) < 0)
        goto fail;
    Py_DECREF(controls);
    return out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(controls);
    return NULL;
}


/* Whether any of `texts` names a key of `twin` (1), or none (0); -1 on error. */
static int reads_any(PyObject *texts, PyObject *twin)
{
    PyObject *seq = PySequence_Fast(texts, "inputs must be a sequence");
    if (seq == NULL)
        return -1;
    int found = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && !found; i++) {
        Py_ssize_t prefix, suffix;
        PyObject *name = input_name(PySequence_Fast_GET_ITEM(seq, i), &prefix, &suffix);
        found = name == NULL ? -1 : PyDict_Contains(twin, name);
        Py_XDECREF(name);
    }
    Py_DECREF(seq);
    return found;
}

/* (op, *texts) as a new tuple: a node's key in merge_sweep. */
static PyObject *sweep_key(PyObject *op, PyObject *texts)
{
    PyObject *seq = PySequence_Fast(texts, "inputs must be a sequence"), *key;
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    key = PyTuple_New(n + 1);
    if (key != NULL) {
        Py_INCREF(op);
        PyTuple_SET_ITEM(key, 0, op);
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject *text = PySequence_Fast_GET_ITEM(seq, j);
            Py_INCREF(text);
            PyTuple_SET_ITEM(key, j + 1, text);
        }
    }
    Py_DECREF(seq);
    return key;
}

/* merge_sweep(names, ops, inputs, mergeable, protected, twin, renamed, same) -> (merges, complete): one pass,
 * in order, over `names` (every node): each node's inputs renamed through `twin` (into `renamed` when that
 * changes them, a control input named twice then kept once); a node whose op is in `mergeable` and whose
 * name is not in `protected` is then looked up, with its op and those inputs, among the nodes before it; on
 * a match `same(earlier, name)` (a Python callable: attrs and device) decides, and a match goes into `twin`
 * (name -> earlier) at once, so later nodes read through it, and leaves `renamed`. `complete`: no node
 * left reads a merged node (each came after what it reads; else sweep again). */
static PyObject *merge_sweep(PyObject *self, PyObject *args)
{
    PyObject *names, *ops, *inputs, *mergeable, *protected, *twin, *renamed, *same, *seen, *firsts;
    long merges = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!O!O:merge_sweep", &PyList_Type, &names, &PyDict_Type, &ops,
                          &PyDict_Type, &inputs, &PySet_Type, &mergeable, &PySet_Type, &protected, &PyDict_Type,
                          &twin, &PyDict_Type, &renamed, &same))
        return NULL;
    seen = PyDict_New();  /* (op, *inputs) -> the first node with them, or a list once several differ */
    firsts = PyDict_New();  /* first input -> the one candidate reading it first so far, None once several */
    if (seen == NULL || firsts == NULL) {
        Py_XDECREF(seen);
        Py_XDECREF(firsts);
        return NULL;
    }
    int again = PyDict_GET_SIZE(renamed) > 0;  /* a sweep after the first: entries may go */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i), *texts, *new, *key, *op, *earlier, *seq;
        int in_twin = PyDict_Contains(twin, name);
        if (in_twin < 0)
            goto fail;
        if (in_twin)
            continue;
        texts = item(inputs, name);
        op = texts ? item(ops, name) : NULL;
        new = op ? renamed_inputs(texts, twin) : NULL;
        if (new == NULL)
            goto fail;
        if (new != Py_None) {
            PyObject *once = controls_once(new);
            Py_DECREF(new);
            if (once == NULL || PyDict_SetItem(renamed, name, once) < 0) {
                Py_XDECREF(once);
                goto fail;
            }
            new = once;
        } else if (again && set_or_del(renamed, name, NULL) < 0) {
            Py_DECREF(new);
            goto fail;
        }
        int candidate = PySet_Contains(mergeable, op);
        if (candidate > 0)
            candidate = !PySet_Contains(protected, name);
        if (candidate <= 0) {
            Py_DECREF(new);
            if (candidate < 0 || PyErr_Occurred())
                goto fail;
            continue;
        }
        seq = PySequence_Fast(new != Py_None ? new : texts, "inputs must be a sequence");
        Py_DECREF(new);
        if (seq == NULL)
            goto fail;
        if (PySequence_Fast_GET_SIZE(seq) > 0) {
            /* a node whose first input no earlier candidate reads first has no match: its key is made only
             * once a second one comes (most nodes' first input is their own) */
            PyObject *first = PySequence_Fast_GET_ITEM(seq, 0), *held = PyDict_GetItemWithError(firsts, first);
            int rc = held == NULL && PyErr_Occurred() ? -1 : 0;
            if (rc == 0 && held == NULL) {
                rc = PyDict_SetItem(firsts, first, name);
                Py_DECREF(seq);
                if (rc < 0)
                    goto fail;
                continue;
            }
            if (rc == 0 && held != Py_None) {  /* the first one's key, now that it may have a match */
                PyObject *theirs = PyDict_GetItemWithError(renamed, held), *their_op, *their_key;
                if (theirs == NULL && !PyErr_Occurred())
                    theirs = item(inputs, held);
                their_op = theirs ? item(ops, held) : NULL;
                their_key = their_op ? sweep_key(their_op, theirs) : NULL;
                rc = their_key == NULL || PyDict_SetItem(seen, their_key, held) < 0 ||
                     PyDict_SetItem(firsts, first, Py_None) < 0 ? -1 : 0;
                Py_XDECREF(their_key);
            }
            if (rc < 0) {
                Py_DECREF(seq);
                goto fail;
            }
        }
        key = sweep_key(op, seq);
        Py_DECREF(seq);
        if (key == NULL)
            goto fail;
        earlier = PyDict_GetItemWithError(seen, key);
        if (earlier == NULL) {
            int stored = PyErr_Occurred() ? -1 : PyDict_SetItem(seen, key, name);
            Py_DECREF(key);
            if (stored < 0)
                goto fail;
            continue;
        }
        if (PyUnicode_Check(earlier)) {  /* a second node with this key: the candidates become a list */
            PyObject *list = PyList_New(1);
            if (list == NULL) {
                Py_DECREF(key);
                goto fail;
            }
            Py_INCREF(earlier);
            PyList_SET_ITEM(list, 0, earlier);
            int stored = PyDict_SetItem(seen, key, list);
            Py_DECREF(list);
            if (stored < 0) {
                Py_DECREF(key);
                goto fail;
            }
            earlier = list;
        }
        Py_DECREF(key);
        int matched = 0;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(earlier) && !matched; j++) {
            PyObject *other = PyList_GET_ITEM(earlier, j);
            PyObject *verdict = PyObject_CallFunctionObjArgs(same, other, name, NULL);
            if (verdict == NULL)
                goto fail;
            matched = PyObject_IsTrue(verdict);
            Py_DECREF(verdict);
            if (matched < 0)
                goto fail;
            if (matched && (PyDict_SetItem(twin, name, other) < 0 || set_or_del(renamed, name, NULL) < 0))
                goto fail;
        }
        if (matched)
            merges++;
        else if (PyList_Append(earlier, name) < 0)
            goto fail;
    }
    Py_DECREF(seen);
    Py_DECREF(firsts);
    int complete = 1;  /* 0: some node reads a merged one; -1: an error */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names) && complete == 1 && merges; i++) {
        PyObject *name = PyList_GET_ITEM(names, i), *texts;
        int in_twin = PyDict_Contains(twin, name), reads;
        if (in_twin != 0) {
            complete = in_twin < 0 ? -1 : 1;
            continue;
        }
        texts = PyDict_GetItemWithError(renamed, name);
        if (texts == NULL && !PyErr_Occurred())
            texts = item(inputs, name);
        reads = texts == NULL ? -1 : reads_any(texts, twin);
        complete = reads < 0 ? -1 : !reads;
    }
    if (complete < 0)
        return NULL;
    return Py_BuildValue("(lO)", merges, complete ? Py_True : Py_False);
fail:
    Py_DECREF(seen);
    Py_DECREF(firsts);
    return NULL;
}

/* Remove `name` from `table` (a dict or set) if it holds it, with one lookup: 0, or -1 on error. */
static int drop_key(PyObject *table, PyObject *name)
{
    if (!PyDict_Check(table))
        return PySet_Discard(table, name) < 0 ? -1 : 0;
#if PY_VERSION_HEX >= 0x030D0000
    return PyDict_Pop(table, name, NULL) < 0 ? -1 : 0;
#else
    PyObject *gone = _PyDict_Pop(table, name, Py_None);
    Py_XDECREF(gone);
    return gone == NULL ? -1 : 0;
#endif
}

/* Every key of `table` that `names` (a set) holds, removed: the way for a table smaller than `names`. */
static int drop_held(PyObject *table, PyObject *names)
{
    PyObject *held = PyList_New(0), *iter = held ? PyObject_GetIter(table) : NULL, *key;
    int rc = iter == NULL ? -1 : 0;
    while (rc == 0 && (key = PyIter_Next(iter)) != NULL) {
        int in = PySet_Contains(names, key);
        rc = in < 0 || (in && PyList_Append(held, key) < 0) ? -1 : 0;
        Py_DECREF(key);
    }
    if (rc == 0 && PyErr_Occurred())
        rc = -1;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(held); i++)
        rc = drop_key(table, PyList_GET_ITEM(held, i));
    Py_XDECREF(iter);
    Py_XDECREF(held);
    return rc;
}

/* drop_keys(names, table, ...) -> None: each of `names` (an iterable) removed from each table (a dict or
 * set) that holds it -- what removing many nodes from an index's tables costs in Python, in C. A table
 * smaller than `names` (when that is a set) is walked instead. */
static PyObject *drop_keys(PyObject *self, PyObject *args)
{
    Py_ssize_t count = PyTuple_GET_SIZE(args), t;
    (void)self;
    if (count < 1) {
        PyErr_SetString(PyExc_TypeError, "drop_keys(names, table, ...)");
        return NULL;
    }
    PyObject *names = PyTuple_GET_ITEM(args, 0), *large = PyList_New(0);
    if (large == NULL)
        return NULL;
    int is_set = PyAnySet_Check(names);
    for (t = 1; t < count; t++) {
        PyObject *table = PyTuple_GET_ITEM(args, t);
        if (!PyDict_Check(table) && !PyAnySet_Check(table)) {
            PyErr_SetString(PyExc_TypeError, "drop_keys takes dicts and sets");
            goto fail;
        }
        Py_ssize_t size = PyDict_Check(table) ? PyDict_GET_SIZE(table) : PySet_GET_SIZE(table);
        if (size == 0)
            continue;
        if (is_set && size < PySet_GET_SIZE(names) ? drop_held(table, names) < 0 : PyList_Append(large, table) < 0)
            goto fail;
    }
    if (PyList_GET_SIZE(large) > 0) {
        PyObject *iter = PyObject_GetIter(names), *name;
        if (iter == NULL)
            goto fail;
        while ((name = PyIter_Next(iter)) != NULL) {
            for (t = 0; t < PyList_GET_SIZE(large); t++) {
                if (drop_key(PyList_GET_ITEM(large, t), name) < 0) {
                    Py_DECREF(name);
                    Py_DECREF(iter);
                    goto fail;
                }
            }
            Py_DECREF(name);
        }
        Py_DECREF(iter);
        if (PyErr_Occurred())
            goto fail;
    }
    Py_DECREF(large);
    Py_RETURN_NONE;
fail:
    Py_DECREF(large);
    return NULL;
}

/* reachable(inputs, starts, colocated) -> set: the nodes `starts` need through their input strings
 * (`inputs`: name -> sequence of str; '^' and ':port' read the node named) and `colocated` (name -> list of
 * names), only nodes that are keys of `inputs`; each start must be one. What io.passes.reachable walks. */
static PyObject *reachable(PyObject *self, PyObject *args)
{
    PyObject *inputs, *starts, *colocated, *keep = NULL, *stack = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!OO!:reachable", &PyDict_Type, &inputs, &starts, &PyDict_Type, &colocated))
        return NULL;
    keep = PySet_New(NULL);
    stack = PySequence_List(starts);
    if (keep == NULL || stack == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stack); i++)
        if (PySet_Add(keep, PyList_GET_ITEM(stack, i)) < 0)
            goto fail;
    while (PyList_GET_SIZE(stack) > 0) {
        Py_ssize_t last = PyList_GET_SIZE(stack) - 1;
        PyObject *name = PyList_GET_ITEM(stack, last);
        Py_INCREF(name);
        if (PyList_SetSlice(stack, last, last + 1, NULL) < 0) {
            Py_DECREF(name);
            goto fail;
        }
        PyObject *texts = item(inputs, name), *targets = NULL;
        PyObject *seq = texts ? PySequence_Fast(texts, "inputs must be sequences") : NULL;
        if (seq != NULL) {
            targets = PyDict_GetItemWithError(colocated, name);
            if (targets == NULL && PyErr_Occurred())
                Py_CLEAR(seq);
        }
        Py_DECREF(name);
        if (seq == NULL)
            goto fail;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), m = targets && PyList_Check(targets) ? PyList_GET_SIZE(targets) : 0;
        for (Py_ssize_t j = 0; j < n + m; j++) {
            PyObject *dep;
            if (j < n) {
                PyObject *text = PySequence_Fast_GET_ITEM(seq, j);
                Py_ssize_t prefix, suffix;
                int known = PyDict_Contains(inputs, text);
                if (known < 0 || !PyUnicode_Check(text)) {
                    if (known >= 0)
                        PyErr_SetString(PyExc_TypeError, "an input is not a str");
                    Py_DECREF(seq);
                    goto fail;
                }
                if (known) {
                    Py_INCREF(text);
                    dep = text;
                } else if ((dep = input_name(text, &prefix, &suffix)) == NULL) {
                    Py_DECREF(seq);
                    goto fail;
                }
            } else {
                dep = PyList_GET_ITEM(targets, j - n);
                Py_INCREF(dep);
            }
            int seen = PySet_Contains(keep, dep), known = seen == 0 ? PyDict_Contains(inputs, dep) : 0;
            int rc = seen < 0 || known < 0 ? -1 : 0;
            if (rc == 0 && known)
                rc = PySet_Add(keep, dep) < 0 || PyList_Append(stack, dep) < 0 ? -1 : 0;
            Py_DECREF(dep);
            if (rc < 0) {
                Py_DECREF(seq);
                goto fail;
            }
        }
        Py_DECREF(seq);
    }
    Py_DECREF(stack);
    return keep;
fail:
    Py_XDECREF(keep);
    Py_XDECREF(stack);
    return NULL;
}

static int is_one_of(PyObject *op, const char *a, const char *b)
{
    return PyUnicode_Check(op) && (PyUnicode_CompareWithASCIIString(op, a) == 0 ||
                                   PyUnicode_CompareWithASCIIString(op, b) == 0);
}

/* in_order(inputs, ops, sources_ok) -> bool: whether each node (in the dict's order) comes after the nodes
 * it reads -- each input's node earlier, or no node of the graph, or (sources_ok) one without inputs, or a
 * NextIteration read by a Merge (a TF1 loop's back edge). io.passes.in_order's walk, compiled. */
static PyObject *in_order(PyObject *self, PyObject *args)
{
    PyObject *inputs, *ops, *seen, *name, *texts;
    int sources_ok, ordered = 1;
    Py_ssize_t at = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!p:in_order", &PyDict_Type, &inputs, &PyDict_Type, &ops, &sources_ok))
        return NULL;
    if ((seen = PySet_New(NULL)) == NULL)
        return NULL;
    while (ordered == 1 && PyDict_Next(inputs, &at, &name, &texts)) {
        PyObject *seq = PySequence_Fast(texts, "inputs must be sequences");
        if (seq == NULL) {
            ordered = -1;
            break;
        }
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq) && ordered == 1; j++) {
            PyObject *text = PySequence_Fast_GET_ITEM(seq, j), *dep, *dep_texts, *op, *dep_op;
            Py_ssize_t prefix, suffix;
            int known = PySet_Contains(seen, text);
            if (known != 0) {
                ordered = known < 0 ? -1 : 1;
                continue;
            }
            if (!PyUnicode_Check(text) || (dep = input_name(text, &prefix, &suffix)) == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "an input is not a str");
                ordered = -1;
                continue;
            }
            known = PySet_Contains(seen, dep);
            dep_texts = known == 0 ? PyDict_GetItemWithError(inputs, dep) : NULL;
            if (known == 0 && dep_texts != NULL && !(sources_ok && PyObject_Length(dep_texts) == 0)) {
                op = PyDict_GetItemWithError(ops, name);
                dep_op = op ? PyDict_GetItemWithError(ops, dep) : NULL;
                ordered = dep_op && is_one_of(op, "Merge", "RefMerge") && is_one_of(dep_op, "NextIteration",
                                                                                    "RefNextIteration");
            }
            if (known < 0 || PyErr_Occurred())
                ordered = -1;
            Py_DECREF(dep);
        }
        Py_DECREF(seq);
        if (ordered == 1 && PySet_Add(seen, name) < 0)
            ordered = -1;
    }
    Py_DECREF(seen);
    if (ordered < 0)
        return NULL;
    return PyBool_FromLong(ordered);
}

/* odd_inputs(inputs) -> list[tuple[str, str]]: each (node, input string) whose string is not the bare name
 * of a node (a port, a control input, or dangling), in order: what validate looks at one by one. */
static PyObject *odd_inputs(PyObject *self, PyObject *args)
{
    PyObject *inputs, *name, *texts, *out;
    Py_ssize_t at = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!:odd_inputs", &PyDict_Type, &inputs))
        return NULL;
    if ((out = PyList_New(0)) == NULL)
        return NULL;
    while (PyDict_Next(inputs, &at, &name, &texts)) {
        PyObject *seq = PySequence_Fast(texts, "inputs must be sequences");
        if (seq == NULL)
            goto fail;
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq); j++) {
            PyObject *text = PySequence_Fast_GET_ITEM(seq, j);
            int known = PyDict_Contains(inputs, text);
            if (known == 0) {
                PyObject *pair = PyTuple_Pack(2, name, text);
                known = pair == NULL || PyList_Append(out, pair) < 0 ? -1 : 1;
                Py_XDECREF(pair);
            }
            if (known < 0) {
                Py_DECREF(seq);
                goto fail;
            }
        }
        Py_DECREF(seq);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_graph", scan_graph, METH_VARARGS, "Scan a binary GraphDef: names, positions, inputs, ops, "
                                             "duplicates, spans, shaped, colocated, header."},
    {"node_names", node_names, METH_VARARGS, "Each node's name and byte span, and the header fields."},
    {"check", check, METH_VARARGS, "Raise ValueError unless the bytes are a valid message of the schema."},
    {"with_inputs", with_inputs, METH_VARARGS, "A NodeDef's bytes with its inputs replaced, as a node field."},
    {"reachable", reachable, METH_VARARGS, "The nodes some nodes need through their inputs and colocations."},
    {"drop_keys", drop_keys, METH_VARARGS, "Remove each name from each dict or set given."},
    {"splice", splice, METH_VARARGS, "A GraphDef's bytes with some node fields dropped or replaced."},
    {"same_bodies", same_bodies, METH_VARARGS, "For each node, the first earlier one equal but for its name."},
    {"in_order", in_order, METH_VARARGS, "Whether each node comes after the nodes it reads."},
    {"odd_inputs", odd_inputs, METH_VARARGS, "Each (node, input) whose input is not a node's bare name."},
    {"merge_sweep", merge_sweep, METH_VARARGS, "One pass of merging nodes with the same op and inputs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_wirescan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__wirescan(void) { return PyModule_Create(&module); }
