/* analyzer._huffman: RFC 7541 §5.2 Huffman decoding in C, a byte of input per step.
 *
 * The HPACK hot loop of a gRPC capture: trace ids and request ids are unique per request,
 * so no cache helps them, and the pure-Python decoder (analyzer/protocols/hpack_state.py,
 * huffman_decode_py) costs about ten times more per byte. This kernel must behave exactly
 * like it: the same bytes for every valid input, ValueError with the same message for every
 * invalid one (tests/test_huffman.py checks both on the hpack-test-case corpus and on random
 * input). It is optional: without a C compiler the package uses the pure-Python decoder.
 *
 * Strategy. The code table of RFC 7541 Appendix B is turned, once at import, into the
 * binary tree of the code (256 internal nodes for 257 symbols) and then into a table
 * indexed by (node, input byte): the node reached after the byte's 8 bits, the symbols
 * completed on the way (at most two: the shortest code has 5 bits), whether the string may
 * end there, and whether the byte decodes EOS (a decoding error, §5.2). It may end at the
 * root, or on the all-ones path less than 8 bits deep: padding is the most significant
 * bits of EOS and is shorter than an octet (§5.2).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static const struct {
    uint32_t code;
    uint8_t bits;
} CODES[257] = {
    {0x00001ff8u, 13}, {0x007fffd8u, 23}, {0x0fffffe2u, 28}, {0x0fffffe3u, 28},
    {0x0fffffe4u, 28}, {0x0fffffe5u, 28}, {0x0fffffe6u, 28}, {0x0fffffe7u, 28},
    {0x0fffffe8u, 28}, {0x00ffffeau, 24}, {0x3ffffffcu, 30}, {0x0fffffe9u, 28},
    {0x0fffffeau, 28}, {0x3ffffffdu, 30}, {0x0fffffebu, 28}, {0x0fffffecu, 28},
    {0x0fffffedu, 28}, {0x0fffffeeu, 28}, {0x0fffffefu, 28}, {0x0ffffff0u, 28},
    {0x0ffffff1u, 28}, {0x0ffffff2u, 28}, {0x3ffffffeu, 30}, {0x0ffffff3u, 28},
    {0x0ffffff4u, 28}, {0x0ffffff5u, 28}, {0x0ffffff6u, 28}, {0x0ffffff7u, 28},
    {0x0ffffff8u, 28}, {0x0ffffff9u, 28}, {0x0ffffffau, 28}, {0x0ffffffbu, 28},
    {0x00000014u, 6}, {0x000003f8u, 10}, {0x000003f9u, 10}, {0x00000ffau, 12},
    {0x00001ff9u, 13}, {0x00000015u, 6}, {0x000000f8u, 8}, {0x000007fau, 11},
    {0x000003fau, 10}, {0x000003fbu, 10}, {0x000000f9u, 8}, {0x000007fbu, 11},
    {0x000000fau, 8}, {0x00000016u, 6}, {0x00000017u, 6}, {0x00000018u, 6},
    {0x00000000u, 5}, {0x00000001u, 5}, {0x00000002u, 5}, {0x00000019u, 6},
    {0x0000001au, 6}, {0x0000001bu, 6}, {0x0000001cu, 6}, {0x0000001du, 6},
    {0x0000001eu, 6}, {0x0000001fu, 6}, {0x0000005cu, 7}, {0x000000fbu, 8},
    {0x00007ffcu, 15}, {0x00000020u, 6}, {0x00000ffbu, 12}, {0x000003fcu, 10},
    {0x00001ffau, 13}, {0x00000021u, 6}, {0x0000005du, 7}, {0x0000005eu, 7},
    {0x0000005fu, 7}, {0x00000060u, 7}, {0x00000061u, 7}, {0x00000062u, 7},
    {0x00000063u, 7}, {0x00000064u, 7}, {0x00000065u, 7}, {0x00000066u, 7},
    {0x00000067u, 7}, {0x00000068u, 7}, {0x00000069u, 7}, {0x0000006au, 7},
    {0x0000006bu, 7}, {0x0000006cu, 7}, {0x0000006du, 7}, {0x0000006eu, 7},
    {0x0000006fu, 7}, {0x00000070u, 7}, {0x00000071u, 7}, {0x00000072u, 7},
    {0x000000fcu, 8}, {0x00000073u, 7}, {0x000000fdu, 8}, {0x00001ffbu, 13},
    {0x0007fff0u, 19}, {0x00001ffcu, 13}, {0x00003ffcu, 14}, {0x00000022u, 6},
    {0x00007ffdu, 15}, {0x00000003u, 5}, {0x00000023u, 6}, {0x00000004u, 5},
    {0x00000024u, 6}, {0x00000005u, 5}, {0x00000025u, 6}, {0x00000026u, 6},
    {0x00000027u, 6}, {0x00000006u, 5}, {0x00000074u, 7}, {0x00000075u, 7},
    {0x00000028u, 6}, {0x00000029u, 6}, {0x0000002au, 6}, {0x00000007u, 5},
    {0x0000002bu, 6}, {0x00000076u, 7}, {0x0000002cu, 6}, {0x00000008u, 5},
    {0x00000009u, 5}, {0x0000002du, 6}, {0x00000077u, 7}, {0x00000078u, 7},
    {0x00000079u, 7}, {0x0000007au, 7}, {0x0000007bu, 7}, {0x00007ffeu, 15},
    {0x000007fcu, 11}, {0x00003ffdu, 14}, {0x00001ffdu, 13}, {0x0ffffffcu, 28},
    {0x000fffe6u, 20}, {0x003fffd2u, 22}, {0x000fffe7u, 20}, {0x000fffe8u, 20},
    {0x003fffd3u, 22}, {0x003fffd4u, 22}, {0x003fffd5u, 22}, {0x007fffd9u, 23},
    {0x003fffd6u, 22}, {0x007fffdau, 23}, {0x007fffdbu, 23}, {0x007fffdcu, 23},
    {0x007fffddu, 23}, {0x007fffdeu, 23}, {0x00ffffebu, 24}, {0x007fffdfu, 23},
    {0x00ffffecu, 24}, {0x00ffffedu, 24}, {0x003fffd7u, 22}, {0x007fffe0u, 23},
    {0x00ffffeeu, 24}, {0x007fffe1u, 23}, {0x007fffe2u, 23}, {0x007fffe3u, 23},
    {0x007fffe4u, 23}, {0x001fffdcu, 21}, {0x003fffd8u, 22}, {0x007fffe5u, 23},
    {0x003fffd9u, 22}, {0x007fffe6u, 23}, {0x007fffe7u, 23}, {0x00ffffefu, 24},
    {0x003fffdau, 22}, {0x001fffddu, 21}, {0x000fffe9u, 20}, {0x003fffdbu, 22},
    {0x003fffdcu, 22}, {0x007fffe8u, 23}, {0x007fffe9u, 23}, {0x001fffdeu, 21},
    {0x007fffeau, 23}, {0x003fffddu, 22}, {0x003fffdeu, 22}, {0x00fffff0u, 24},
    {0x001fffdfu, 21}, {0x003fffdfu, 22}, {0x007fffebu, 23}, {0x007fffecu, 23},
    {0x001fffe0u, 21}, {0x001fffe1u, 21}, {0x003fffe0u, 22}, {0x001fffe2u, 21},
    {0x007fffedu, 23}, {0x003fffe1u, 22}, {0x007fffeeu, 23}, {0x007fffefu, 23},
    {0x000fffeau, 20}, {0x003fffe2u, 22}, {0x003fffe3u, 22}, {0x003fffe4u, 22},
    {0x007ffff0u, 23}, {0x003fffe5u, 22}, {0x003fffe6u, 22}, {0x007ffff1u, 23},
    {0x03ffffe0u, 26}, {0x03ffffe1u, 26}, {0x000fffebu, 20}, {0x0007fff1u, 19},
    {0x003fffe7u, 22}, {0x007ffff2u, 23}, {0x003fffe8u, 22}, {0x01ffffecu, 25},
    {0x03ffffe2u, 26}, {0x03ffffe3u, 26}, {0x03ffffe4u, 26}, {0x07ffffdeu, 27},
    {0x07ffffdfu, 27}, {0x03ffffe5u, 26}, {0x00fffff1u, 24}, {0x01ffffedu, 25},
    {0x0007fff2u, 19}, {0x001fffe3u, 21}, {0x03ffffe6u, 26}, {0x07ffffe0u, 27},
    {0x07ffffe1u, 27}, {0x03ffffe7u, 26}, {0x07ffffe2u, 27}, {0x00fffff2u, 24},
    {0x001fffe4u, 21}, {0x001fffe5u, 21}, {0x03ffffe8u, 26}, {0x03ffffe9u, 26},
    {0x0ffffffdu, 28}, {0x07ffffe3u, 27}, {0x07ffffe4u, 27}, {0x07ffffe5u, 27},
    {0x000fffecu, 20}, {0x00fffff3u, 24}, {0x000fffedu, 20}, {0x001fffe6u, 21},
    {0x003fffe9u, 22}, {0x001fffe7u, 21}, {0x001fffe8u, 21}, {0x007ffff3u, 23},
    {0x003fffeau, 22}, {0x003fffebu, 22}, {0x01ffffeeu, 25}, {0x01ffffefu, 25},
    {0x00fffff4u, 24}, {0x00fffff5u, 24}, {0x03ffffeau, 26}, {0x007ffff4u, 23},
    {0x03ffffebu, 26}, {0x07ffffe6u, 27}, {0x03ffffecu, 26}, {0x03ffffedu, 26},
    {0x07ffffe7u, 27}, {0x07ffffe8u, 27}, {0x07ffffe9u, 27}, {0x07ffffeau, 27},
    {0x07ffffebu, 27}, {0x0ffffffeu, 28}, {0x07ffffecu, 27}, {0x07ffffedu, 27},
    {0x07ffffeeu, 27}, {0x07ffffefu, 27}, {0x07fffff0u, 27}, {0x03ffffeeu, 26},
    {0x3fffffffu, 30},
};

#define EOS 256
#define NODES 256
#define UNSET INT16_MIN
/* One entry of STEP: next node in bits 0-7, flags, symbols emitted in bits 16-23, 24-31. */
#define F_ACCEPT 0x100u
#define F_FAIL 0x200u
#define EMIT_SHIFT 10

static uint32_t STEP[NODES * 256];

/* Builds STEP; -1 if the table above were not a complete prefix code (it is: checked so
 * that a typo could never decode quietly wrong). */
static int build_step(void)
{
    /* child[node][bit]: an internal node (>= 0) or a leaf, -(symbol + 1) */
    static int16_t child[NODES][2];
    int8_t ones_depth[NODES]; /* depth of a node on the all-ones path, else -1 */
    int nodes = 1;
    for (int n = 0; n < NODES; n++) {
        child[n][0] = child[n][1] = UNSET;
        ones_depth[n] = -1;
    }
    ones_depth[0] = 0;
    for (int sym = 0; sym <= EOS; sym++) {
        int node = 0;
        for (int i = CODES[sym].bits - 1; i >= 0; i--) {
            int bit = (CODES[sym].code >> i) & 1;
            if (i == 0) {
                if (child[node][bit] != UNSET)
                    return -1;
                child[node][bit] = (int16_t)-(sym + 1);
                break;
            }
            if (child[node][bit] == UNSET) {
                if (nodes == NODES)
                    return -1;
                child[node][bit] = (int16_t)nodes;
                if (bit && ones_depth[node] >= 0 && ones_depth[node] < 100)
                    ones_depth[nodes] = (int8_t)(ones_depth[node] + 1);
                nodes++;
            }
            else if (child[node][bit] < 0) {
                return -1;
            }
            node = child[node][bit];
        }
    }
    if (nodes != NODES)
        return -1;
    for (int n = 0; n < NODES; n++)
        if (child[n][0] == UNSET || child[n][1] == UNSET)
            return -1;
    for (int state = 0; state < NODES; state++) {
        for (int byte = 0; byte < 256; byte++) {
            int node = state, emitted = 0, fail = 0;
            uint32_t syms = 0;
            for (int i = 7; i >= 0; i--) {
                int c = child[node][(byte >> i) & 1];
                if (c >= 0) {
                    node = c;
                    continue;
                }
                if (-c - 1 == EOS) {
                    fail = 1;
                    break;
                }
                syms |= (uint32_t)(-c - 1) << (16 + 8 * emitted);
                emitted++;
                node = 0;
            }
            uint32_t e;
            if (fail) {
                e = F_FAIL;
            }
            else {
                e = (uint32_t)node | syms | (uint32_t)emitted << EMIT_SHIFT;
                if (node == 0 || (ones_depth[node] >= 1 && ones_depth[node] <= 7))
                    e |= F_ACCEPT;
            }
            STEP[state << 8 | byte] = e;
        }
    }
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(raw, /)\n--\n\n"
"RFC 7541 §5.2 Huffman string; ValueError when invalid or incomplete.");

static PyObject *decode(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    (void)module;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *in = view.buf;
    Py_ssize_t n = view.len;
    /* at most 8 bits / 5 bits per symbol = 1.6 bytes out per byte in */
    if (n > (PY_SSIZE_T_MAX - 8) / 2) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n + n / 5 * 3 + 3);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    unsigned char *start = o;
    uint32_t state = 0, accept = F_ACCEPT;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t e = STEP[state << 8 | in[i]];
        if (e & F_FAIL) {
            PyBuffer_Release(&view);
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "invalid Huffman code");
            return NULL;
        }
        switch ((e >> EMIT_SHIFT) & 3) {
        case 2:
            *o++ = (unsigned char)(e >> 16);
            *o++ = (unsigned char)(e >> 24);
            break;
        case 1:
            *o++ = (unsigned char)(e >> 16);
            break;
        default:
            break;
        }
        state = e & 0xFF;
        accept = e & F_ACCEPT;
    }
    PyBuffer_Release(&view);
    if (!accept) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, "incomplete Huffman code");
        return NULL;
    }
    if (_PyBytes_Resize(&out, o - start) < 0)
        return NULL;
    return out;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_O, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analyzer._huffman",
    "RFC 7541 Huffman decoding in C (the pure-Python fallback is in hpack_state).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__huffman(void)
{
    if (build_step() < 0) {
        PyErr_SetString(PyExc_ImportError, "analyzer._huffman: the Huffman code table is not a prefix code");
        return NULL;
    }
    return PyModule_Create(&module);
}
