.PHONY: test lint bench demo

test:
	go test -race -p 1 ./...

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	staticcheck ./...

bench:
	go test -run '^$$' -bench BenchmarkIngest -benchtime 20000x -count 3 ./internal/webhook/

demo:
	go run ./cmd/hookwise demo
