# The README's two commands. Both install missing Debian packages first (scripts/deps.sh).
JOBS ?= $(shell nproc)

.PHONY: all deps build demo study-example test bench format clean install

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

# The main job: fine-tune and evaluate on FashionMNIST, the embedded default dataset.
demo: build
	@bash scripts/demo.sh build/cvision

# The transfer study in miniature (docs/study.md): FashionMNIST-pretrained models fine-tuned on
# scikit-learn's digits and a FashionMNIST shirt task; <= 30 minutes on 2 cores.
study-example: build
	@bash scripts/study_example.sh build/cvision

# The whole suite: release build (unit + parity), ASan/UBSan build (unit + bad input), libFuzzer smoke runs.
test: deps
	@bash scripts/test.sh

bench: build
	@bash bench/run.sh

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

install: build
	@cmake --install build

clean:
	rm -rf build build-asan build-fuzz
