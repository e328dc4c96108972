/* cvision train: fine-tune a model on a dataset (see include/cvision/trainer.h). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "cvision/dist.h"
#include "cvision/trainer.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: cvision train -m ARCH [-w WEIGHTS] --data SPEC [--val SPEC] --out DIR [options]\n"
        "  --epochs E (10)  --batch B (64)  --lr LR (0.01)  --opt sgd|sgd_nesterov|adam|adamw\n"
        "  --momentum M (0.9)  --wd WD (1e-4)  --norm-wd WD  --sched 'cosine --warmup 1 ...'\n"
        "  --val-fraction F (0.2 when --val is absent; 0: no validation)\n"
        "  --train-transform T  --eval-transform T  (pipeline strings, docs/transforms.md)\n"
        "  --loss ce|bce|mse|l1  --label-smoothing S  --mixup A  --cutmix A\n"
        "  --mode full|linear|lpft  --lp-epochs N  --lr-mults 'fc.=10'  --clip-grad N\n"
        "  --patience N  --ema DECAY  --metric NAME  --seed S  --resume  --drop-last\n"
        "  --amp bf16 (convolutions and linear layers in bf16; needs AVX512-BF16)\n"
        "  --workers W (2)  --threads T  --runs-db FILE  --max-steps N  --quiet\n"
        "  --no-shuffle  --dropout P (every dropout layer's probability)\n"
        "Under mpirun, trains data-parallel across the ranks (docs/distributed.md);\n"
        "  --sync-bn: batch-norm statistics over all ranks\n"
        "Writes DIR/last.safetensors and DIR/best.safetensors (+ .json sidecars), "
        "DIR/runs.sqlite.\n");
}

int cmd_train(cv_ctx *ctx, int argc, char **argv)
{
    enum {
        O_VAL = 256,
        O_VALF,
        O_TTF,
        O_ETF,
        O_LOSS,
        O_LS,
        O_MODE,
        O_LPE,
        O_LRM,
        O_CLIP,
        O_PAT,
        O_EMA,
        O_METRIC,
        O_MIXUP,
        O_CUTMIX,
        O_RESUME,
        O_DROP,
        O_RUNS,
        O_MAXS,
        O_QUIET,
        O_NWD,
        O_SCHED,
        O_OPT,
        O_NOSHUF,
        O_DROPOUT,
        O_SYNCBN,
        O_AMP
    };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"data", required_argument, 0, 'd'},
                                         {"val", required_argument, 0, O_VAL},
                                         {"val-fraction", required_argument, 0, O_VALF},
                                         {"out", required_argument, 0, 'o'},
                                         {"epochs", required_argument, 0, 'e'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"lr", required_argument, 0, 'l'},
                                         {"opt", required_argument, 0, O_OPT},
                                         {"momentum", required_argument, 0, 'M'},
                                         {"wd", required_argument, 0, 'W'},
                                         {"norm-wd", required_argument, 0, O_NWD},
                                         {"sched", required_argument, 0, O_SCHED},
                                         {"train-transform", required_argument, 0, O_TTF},
                                         {"eval-transform", required_argument, 0, O_ETF},
                                         {"loss", required_argument, 0, O_LOSS},
                                         {"label-smoothing", required_argument, 0, O_LS},
                                         {"mode", required_argument, 0, O_MODE},
                                         {"lp-epochs", required_argument, 0, O_LPE},
                                         {"lr-mults", required_argument, 0, O_LRM},
                                         {"clip-grad", required_argument, 0, O_CLIP},
                                         {"patience", required_argument, 0, O_PAT},
                                         {"ema", required_argument, 0, O_EMA},
                                         {"amp", required_argument, 0, O_AMP},
                                         {"metric", required_argument, 0, O_METRIC},
                                         {"mixup", required_argument, 0, O_MIXUP},
                                         {"cutmix", required_argument, 0, O_CUTMIX},
                                         {"seed", required_argument, 0, 's'},
                                         {"resume", no_argument, 0, O_RESUME},
                                         {"drop-last", no_argument, 0, O_DROP},
                                         {"workers", required_argument, 0, 'j'},
                                         {"threads", required_argument, 0, 't'},
                                         {"runs-db", required_argument, 0, O_RUNS},
                                         {"max-steps", required_argument, 0, O_MAXS},
                                         {"quiet", no_argument, 0, O_QUIET},
                                         {"help", no_argument, 0, 'h'},
                                         {"no-shuffle", no_argument, 0, O_NOSHUF},
                                         {"dropout", required_argument, 0, O_DROPOUT},
                                         {"sync-bn", no_argument, 0, O_SYNCBN},
                                         {0, 0, 0, 0}};
    cv_train_config c;
    cv_train_config_default(&c);
    c.progress = isatty(STDERR_FILENO) ? 1 : 0;
    cv_status s = CV_OK;
    double seed = 0;
    int ch;
    optind = 1;
    while (!s && (ch = getopt_long(argc, argv, "m:w:d:o:e:b:l:M:W:s:j:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            c.arch = optarg;
            break;
        case 'w':
            c.weights = optarg;
            break;
        case 'd':
            c.data = optarg;
            break;
        case O_VAL:
            c.val = optarg;
            break;
        case O_VALF:
            s = cli_double(ctx, "--val-fraction", optarg, 0, 1, &c.val_fraction);
            break;
        case 'o':
            c.out_dir = optarg;
            break;
        case 'e':
            s = cli_int(ctx, "--epochs", optarg, 1, 1 << 20, &c.epochs);
            break;
        case 'b':
            s = cli_int(ctx, "--batch", optarg, 1, 1 << 20, &c.batch);
            break;
        case 'l':
            s = cli_double(ctx, "--lr", optarg, 0, 1e9, &c.lr);
            break;
        case O_OPT:
            c.optim = optarg;
            break;
        case 'M':
            s = cli_double(ctx, "--momentum", optarg, 0, 1, &c.momentum);
            break;
        case 'W':
            s = cli_double(ctx, "--wd", optarg, 0, 1e9, &c.weight_decay);
            break;
        case O_NWD:
            s = cli_double(ctx, "--norm-wd", optarg, 0, 1e9, &c.norm_weight_decay);
            break;
        case O_SCHED:
            c.sched = optarg;
            break;
        case O_TTF:
            c.train_transform = optarg;
            break;
        case O_ETF:
            c.eval_transform = optarg;
            break;
        case O_LOSS:
            c.loss = optarg;
            break;
        case O_LS:
            s = cli_double(ctx, "--label-smoothing", optarg, 0, 1, &c.label_smoothing);
            break;
        case O_MODE:
            c.mode = optarg;
            break;
        case O_LPE:
            s = cli_int(ctx, "--lp-epochs", optarg, 1, 1 << 20, &c.lp_epochs);
            break;
        case O_LRM:
            c.lr_mults = optarg;
            break;
        case O_CLIP:
            s = cli_double(ctx, "--clip-grad", optarg, 0, 1e30, &c.clip_grad);
            break;
        case O_PAT:
            s = cli_int(ctx, "--patience", optarg, 0, 1 << 20, &c.patience);
            break;
        case O_EMA:
            s = cli_double(ctx, "--ema", optarg, 0, 1, &c.ema_decay);
            break;
        case O_METRIC:
            c.metric = optarg;
            break;
        case O_AMP:
            c.amp = optarg;
            break;
        case O_MIXUP:
            s = cli_double(ctx, "--mixup", optarg, 0, 1e9, &c.mixup);
            break;
        case O_CUTMIX:
            s = cli_double(ctx, "--cutmix", optarg, 0, 1e9, &c.cutmix);
            break;
        case 's':
            s = cli_double(ctx, "--seed", optarg, 0, 9007199254740992.0, &seed);
            break;
        case O_RESUME:
            c.resume = 1;
            break;
        case O_DROP:
            c.drop_last = 1;
            break;
        case 'j':
            s = cli_int(ctx, "--workers", optarg, 1, 256, &c.workers);
            break;
        case 't':
            s = cli_int(ctx, "--threads", optarg, 1, 4096, &c.threads);
            break;
        case O_RUNS:
            c.runs_db = optarg;
            break;
        case O_MAXS:
            s = cli_int(ctx, "--max-steps", optarg, 1, 1 << 30, &c.max_steps);
            break;
        case O_QUIET:
            c.progress = -1;
            break;
        case O_NOSHUF:
            c.no_shuffle = 1;
            break;
        case O_DROPOUT:
            s = cli_double(ctx, "--dropout", optarg, 0, 1, &c.dropout);
            break;
        case O_SYNCBN:
            c.sync_bn = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (s) return cli_error(ctx);
    if (!c.arch || !c.data || !c.out_dir || optind < argc) {
        usage(stderr);
        return 2;
    }
    if (seed < 0 || seed != floor(seed)) {
        cv_fail(ctx, CV_ERR_INVALID, "--seed: expected a non-negative integer");
        return cli_error(ctx);
    }
    c.seed = (uint64_t)seed;
    cv_train_result r;
    cv_comm *comm = NULL;
    if ((s = cv_comm_init(ctx, &comm))) return cli_error(ctx);
    c.comm = comm;
    int rank = cv_comm_rank(comm);
    if (cli_comm_end(ctx, comm, cv_train_run(ctx, &c, &r))) return cli_error(ctx);
    if (c.progress >= 0 && rank == 0) {
        if (r.best_epoch >= 0)
            printf("best %s %.4f at epoch %d; checkpoints in %s (run %lld)\n",
                   c.metric ? c.metric : "metric", r.best_metric, r.best_epoch + 1, c.out_dir,
                   (long long)r.run_id);
        else
            printf("trained %d epochs; checkpoints in %s (run %lld)\n", r.epochs_run, c.out_dir,
                   (long long)r.run_id);
    }
    return 0;
}
