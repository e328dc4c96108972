#!/usr/bin/env bash
# `make install` works: install into a temporary prefix, then build and run a program against the
# installed headers and shared library through pkg-config.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cat >"$prefix/use.c" <<'C'
#include <cvision/cvision.h>
#include <stdio.h>
int main(void)
{
    cv_ctx *ctx = cv_ctx_new();
    cv_model *m;
    if (cv_model_create(ctx, "resnet18", 10, &m)) {
        fprintf(stderr, "%s\n", cv_ctx_error(ctx));
        return 1;
    }
    int n = cv_state_count(cv_model_params(m));
    cv_model_free(m);
    cv_ctx_free(ctx);
    return n == 122 ? 0 : 1; /* resnet18's state_dict has 122 keys */
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -Wall -Werror "$prefix/use.c" -o "$prefix/use" $(pkg-config --cflags --libs cvision) -Wl,-rpath,"$prefix/lib"
"$prefix/use"
test -x "$prefix/bin/cvision"
echo "install ok"
