/*
 * cmd_serve.c — `llavaguard serve`: an HTTP service (OpenAI-compatible /v1/moderations and
 * /v1/chat/completions, the native /v1/assess, /health, /v1/models, /metrics and a page at /)
 * over one guard's batch engine. This file parses the options, opens the guard, the
 * configuration and the audit log, blocks the signals (serve_http.c takes them with sigwait) and
 * runs the server until SIGTERM/SIGINT, which drain the requests in progress and exit 0.
 */
#include "serve.h"

#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define CMD "serve"

static void print_help(void) {
    printf("Usage: llavaguard serve --model DIR [options]\n"
           "\n"
           "Serves a LlavaGuard model over HTTP: POST /v1/moderations (OpenAI-compatible),\n"
           "POST /v1/assess (native verdicts), POST /v1/chat/completions (the SGLang example\n"
           "shape), GET /health, /v1/models, /metrics (Prometheus) and a web page at /.\n"
           "Concurrent requests share the batch engine's batched passes. SIGHUP reloads --config\n"
           "and --token-file (a bad file is refused, the old one kept); SIGTERM drains and exits.\n"
           "\n"
           "Options:\n"
           "  -m, --model DIR          model folder (Hugging Face layout)\n"
           "      --host ADDR          address to bind (default 127.0.0.1; ::1 for IPv6)\n"
           "      --port N             port (default 8080; 0 picks a free one)\n"
           "      --port-file FILE     write the bound port to FILE once listening\n"
           "      --config FILE        thresholds, review band, observe-only, policies, tenants\n"
           "                           (JSON, docs/serve.md)\n"
           "      --token-file FILE    bearer tokens, one per line: TOKEN [TENANT]; enables auth\n"
           "      --audit-log FILE     append one JSON line per verdict (fsync'd per batch)\n"
           "      --log FILE           request log (JSON lines; default standard error)\n"
           "      --allow-remote HOST  allow http(s) image URLs from HOST (repeatable)\n"
           "  -t, --threads N          compute threads (default: all cores)\n"
           "      --http-threads N     HTTP threads (default 2)\n"
           "      --max-batch N        sequences per batched pass (default 8)\n"
           "      --max-queue N        requests waiting before 503 (default 64)\n"
           "      --features-cache MB  cache image features of repeated images (default 0: off)\n"
           "      --max-body BYTES     request body limit (default 33554432)\n"
           "      --max-images N       images per request (default 8)\n"
           "      --max-header BYTES   header memory per connection (default 32768)\n"
           "      --max-connections N  open connections (default 256)\n"
           "      --timeout S          idle connection timeout in seconds (default 30)\n"
           "      --deadline S         per-request deadline, then 504 (default 120)\n"
           "      --remote-max-bytes N remote image size limit (default 16777216)\n"
           "      --remote-timeout S   remote image download limit (default "
           "10)\n" APP_IMAGE_OPTIONS_HELP
           "      --exact              plain float32 reference kernels\n"
           "      --precision P        accurate (default) or bf16\n"
           "      --kv-type T          KV cache: i16 (default), f32, bf16 or f16\n"
           "  -h, --help               show this help\n"
           "\n"
           "Default --max-pixels here is 40000000. Exit status: 0 after a clean shutdown, 1 when\n"
           "the model, config or socket cannot be opened, 2 usage error.\n");
}

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_PORT_FILE,
    OPT_CONFIG,
    OPT_TOKENS,
    OPT_AUDIT,
    OPT_LOG,
    OPT_REMOTE,
    OPT_HTTP_THREADS,
    OPT_MAX_BATCH,
    OPT_MAX_QUEUE,
    OPT_FCACHE,
    OPT_MAX_BODY,
    OPT_MAX_IMAGES,
    OPT_MAX_HEADER,
    OPT_MAX_CONN,
    OPT_TIMEOUT,
    OPT_DEADLINE,
    OPT_REMOTE_BYTES,
    OPT_REMOTE_TIMEOUT,
    OPT_EXACT,
    OPT_PRECISION,
    OPT_KV,
};

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"token-file", required_argument, NULL, OPT_TOKENS},
    {"audit-log", required_argument, NULL, OPT_AUDIT},
    {"log", required_argument, NULL, OPT_LOG},
    {"allow-remote", required_argument, NULL, OPT_REMOTE},
    {"threads", required_argument, NULL, 't'},
    {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
    {"max-batch", required_argument, NULL, OPT_MAX_BATCH},
    {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
    {"features-cache", required_argument, NULL, OPT_FCACHE},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-images", required_argument, NULL, OPT_MAX_IMAGES},
    {"max-header", required_argument, NULL, OPT_MAX_HEADER},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"deadline", required_argument, NULL, OPT_DEADLINE},
    {"remote-max-bytes", required_argument, NULL, OPT_REMOTE_BYTES},
    {"remote-timeout", required_argument, NULL, OPT_REMOTE_TIMEOUT},
    APP_IMAGE_LONG_OPTIONS,
    {"exact", no_argument, NULL, OPT_EXACT},
    {"precision", required_argument, NULL, OPT_PRECISION},
    {"kv-type", required_argument, NULL, OPT_KV},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct serve_opts {
    const char *host, *port_file, *audit, *log;
    int port, http_threads, threads;
    lg_guard_params gp;
    long long fcache_mb;
} serve_opts;

/* A whole number option in [lo, hi]; false after printing the usage error. */
static bool num_opt(const char *name, const char *arg, long long lo, long long hi, long long *v) {
    if (app_parse_ll(arg, lo, hi, v)) return true;
    app_usage_error(CMD, "--%s must be a whole number in [%lld, %lld]", name, lo, hi);
    return false;
}

static int parse_args(int argc, char **argv, srv_server *s, serve_opts *o) {
    opterr = 0;
    optind = 1;
    int c;
    long long v;
    double d;
    while ((c = getopt_long(argc, argv, ":m:t:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            s->model_dir = optarg;
            break;
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            if (!num_opt("port", optarg, 0, 65535, &v)) return APP_EXIT_USAGE;
            o->port = (int)v;
            break;
        case OPT_PORT_FILE:
            o->port_file = optarg;
            break;
        case OPT_CONFIG:
            s->config_path = optarg;
            break;
        case OPT_TOKENS:
            s->token_path = optarg;
            break;
        case OPT_AUDIT:
            o->audit = optarg;
            break;
        case OPT_LOG:
            o->log = optarg;
            break;
        case OPT_REMOTE: {
            char **h = realloc(s->allow_hosts, (s->n_allow_hosts + 1) * sizeof *h);
            if (!h) return app_fail(CMD, "out of memory");
            s->allow_hosts = h;
            s->allow_hosts[s->n_allow_hosts++] = optarg;
            s->allow_remote = true;
            break;
        }
        case 't':
            if (!num_opt("threads", optarg, 1, 1024, &v)) return APP_EXIT_USAGE;
            o->gp.model.n_threads = (int)v;
            break;
        case OPT_HTTP_THREADS:
            if (!num_opt("http-threads", optarg, 1, 64, &v)) return APP_EXIT_USAGE;
            o->http_threads = (int)v;
            break;
        case OPT_MAX_BATCH:
            if (!num_opt("max-batch", optarg, 1, 64, &v)) return APP_EXIT_USAGE;
            o->gp.max_batch = (int)v;
            break;
        case OPT_MAX_QUEUE:
            if (!num_opt("max-queue", optarg, 1, 1 << 20, &v)) return APP_EXIT_USAGE;
            o->gp.max_queue = (int)v;
            break;
        case OPT_FCACHE:
            if (!num_opt("features-cache", optarg, 0, 1 << 20, &v)) return APP_EXIT_USAGE;
            o->fcache_mb = v;
            break;
        case OPT_MAX_BODY:
            if (!num_opt("max-body", optarg, 1024, 1LL << 34, &v)) return APP_EXIT_USAGE;
            s->limits.max_body = (size_t)v;
            break;
        case OPT_MAX_IMAGES:
            if (!num_opt("max-images", optarg, 1, 256, &v)) return APP_EXIT_USAGE;
            s->limits.max_images = (int)v;
            break;
        case OPT_MAX_HEADER:
            if (!num_opt("max-header", optarg, 4096, 1 << 24, &v)) return APP_EXIT_USAGE;
            s->limits.max_header = (size_t)v;
            break;
        case OPT_MAX_CONN:
            if (!num_opt("max-connections", optarg, 1, 100000, &v)) return APP_EXIT_USAGE;
            s->limits.max_connections = (int)v;
            break;
        case OPT_TIMEOUT:
            if (!num_opt("timeout", optarg, 1, 86400, &v)) return APP_EXIT_USAGE;
            s->limits.conn_timeout_s = (int)v;
            break;
        case OPT_DEADLINE:
            if (!app_parse_double(optarg, 0.001, 86400, &d))
                return app_usage_error(CMD, "--deadline must be seconds in (0, 86400]");
            s->limits.deadline_s = d;
            break;
        case OPT_REMOTE_BYTES:
            if (!num_opt("remote-max-bytes", optarg, 1, 1LL << 32, &v)) return APP_EXIT_USAGE;
            s->limits.max_remote_bytes = (size_t)v;
            break;
        case OPT_REMOTE_TIMEOUT:
            if (!app_parse_double(optarg, 0.001, 3600, &d))
                return app_usage_error(CMD, "--remote-timeout must be seconds in (0, 3600]");
            s->limits.remote_timeout_s = d;
            break;
        case APP_OPT_ALPHA:
        case APP_OPT_EXIF:
        case APP_OPT_MAX_PIXELS: {
            int rc = app_image_option(CMD, c, optarg, &s->image_options);
            if (rc >= 0) return rc;
            break;
        }
        case OPT_EXACT:
            o->gp.model.kernels = "ref";
            break;
        case OPT_PRECISION:
            if (!app_parse_precision(optarg, &o->gp.model.precision))
                return app_usage_error(CMD, "--precision must be accurate or bf16");
            break;
        case OPT_KV:
            if (!app_parse_kv_type(optarg, &o->gp.model.kv_type))
                return app_usage_error(CMD, "--kv-type must be f32, i16, bf16 or f16");
            break;
        case 'h':
            print_help();
            return APP_EXIT_OK;
        case ':':
            return app_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage_error(CMD, "unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return app_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!s->model_dir) return app_usage_error(CMD, "missing --model DIR");
    return -1;
}

/* The name clients pass as "model": the folder's base name. */
static char *model_name(const char *dir) {
    char *d = strdup(dir);
    if (!d) return NULL;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/') d[--n] = '\0';
    const char *base = strrchr(d, '/');
    char *out = strdup(base ? base + 1 : d);
    free(d);
    return out;
}

int cmd_serve(int argc, char **argv) {
    static srv_server s; /* one server per process: the signal loop owns it */
    memset(&s, 0, sizeof s);
    s.limits = (srv_limits){.max_body = 32u << 20,
                            .max_pixels = 40000000,
                            .max_images = 8,
                            .max_header = 32768,
                            .max_connections = 256,
                            .conn_timeout_s = 30,
                            .deadline_s = 120,
                            .max_remote_bytes = 16u << 20,
                            .remote_timeout_s = 10};
    s.image_options = lg_image_options_default();
    s.image_options.max_pixels = s.limits.max_pixels;
    serve_opts o = {
        .host = "127.0.0.1", .port = 8080, .http_threads = 2, .gp = lg_guard_params_default()};
    o.gp.max_queue = 64;
    int rc = parse_args(argc, argv, &s, &o);
    if (rc >= 0) {
        free(s.allow_hosts);
        return rc;
    }
    s.limits.max_pixels = s.image_options.max_pixels;
    o.gp.features_cache_bytes = o.fcache_mb << 20;

    /* every thread started from here on inherits the blocked signals; srv_run takes them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    pthread_mutex_init(&s.cfg_mu, NULL);
    pthread_mutex_init(&s.log_mu, NULL);
    pthread_mutex_init(&s.pend_mu, NULL);
    srv_metrics_init(&s.metrics);
    char *name = model_name(s.model_dir);
    s.model_id = name ? name : "llavaguard";
    s.log = stderr;
    lg_error e = {0};
    char msg[600];
    if (o.log && strcmp(o.log, "-") != 0 && !(s.log = fopen(o.log, "a"))) {
        s.log = stderr;
        rc = app_fail(CMD, "%s: cannot open the log", o.log);
        goto done;
    }
    if (lg_guard_open(s.model_dir, &o.gp, &s.guard, &e) != LG_OK) {
        rc = app_fail_err(CMD, &e);
        goto done;
    }
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", s.model_dir);
    uint8_t *cfg_bytes = NULL;
    size_t cfg_size = 0;
    if (lg_read_file(cfg_path, 16 << 20, &cfg_bytes, &cfg_size, NULL) == LG_OK)
        lg_sha256_hex(cfg_bytes, cfg_size, s.model_sha256);
    lg_free(cfg_bytes);
    if (!srv_config_load(&s, s.config_path, s.token_path, &s.cfg, msg, sizeof msg)) {
        rc = app_fail(CMD, "%s", msg);
        goto done;
    }
    if (o.audit && !srv_audit_open(o.audit, &s.audit, msg, sizeof msg)) {
        rc = app_fail(CMD, "audit log %s", msg);
        goto done;
    }
    rc = srv_run(&s, o.host, o.port, o.http_threads, o.port_file);
done:
    srv_audit_close(s.audit);
    lg_guard_free(s.guard);
    if (s.cfg) srv_config_unref(&s, s.cfg);
    if (s.log && s.log != stderr) fclose(s.log);
    free(name);
    free(s.allow_hosts);
    curl_global_cleanup();
    return rc;
}
