/* Bare jansson on the file `LoquatBench json-parse` reads: the floor under our JSON.parse.
 *
 * Build: cc -O2 jansson_parse.c -o jansson_parse $(pkg-config --cflags --libs jansson)
 * Usage: jansson_parse FILE.json [REPEATS]
 *
 * Same flags as JSON.parse (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL); one
 * untimed warm-up; each timed sample is json_loadb plus json_decref of the tree, because
 * JSON.parse frees jansson's tree before it returns (its result is the converted JSONValue).
 * One JSON line on stdout with every sample, like the Swift and Python sides. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: jansson_parse FILE.json [REPEATS]\n"); return 2; }
    int repeats = argc > 2 ? atoi(argv[2]) : 10;
    if (repeats < 1) repeats = 1;
    FILE *file = fopen(argv[1], "rb");
    if (!file) { perror(argv[1]); return 1; }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    rewind(file);
    char *bytes = malloc((size_t)size);
    if (!bytes || fread(bytes, 1, (size_t)size, file) != (size_t)size) { fprintf(stderr, "cannot read %s\n", argv[1]); return 1; }
    fclose(file);

    size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL;
    json_error_t error;
    json_t *warm = json_loadb(bytes, (size_t)size, flags, &error);
    if (!warm) { fprintf(stderr, "%s:%d:%d: %s\n", argv[1], error.line, error.column, error.text); return 1; }
    json_decref(warm);

    double *seconds = malloc(sizeof(double) * (size_t)repeats);
    double *load = malloc(sizeof(double) * (size_t)repeats);
    for (int i = 0; i < repeats; i++) {
        double start = now();
        json_t *root = json_loadb(bytes, (size_t)size, flags, &error);
        double loaded = now();
        json_decref(root);
        double freed = now();
        seconds[i] = freed - start;
        load[i] = loaded - start;
    }
    printf("{\"benchmark\":\"json-parse\",\"implementation\":\"jansson-c\",\"jansson\":\"%s\",\"byteCount\":%ld,"
           "\"repeats\":%d,\"seconds\":[", jansson_version_str(), size, repeats);
    for (int i = 0; i < repeats; i++) printf("%s%.9f", i ? "," : "", seconds[i]);
    printf("],\"loadSeconds\":[");
    for (int i = 0; i < repeats; i++) printf("%s%.9f", i ? "," : "", load[i]);
    qsort(seconds, (size_t)repeats, sizeof(double), compare);
    printf("],\"seconds_p50\":%.9f,\"seconds_min\":%.9f,\"megabytesPerSecond\":%.3f}\n",
           seconds[repeats / 2], seconds[0], (double)size / seconds[repeats / 2] / 1e6);
    return 0;
}
