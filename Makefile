.PHONY: test lint bench bench-serve demo

test:
	go test -race -p 1 ./...

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	staticcheck ./...

bench:
	go test -run '^$$' -bench BenchmarkIngest -benchtime 20000x -count 3 ./internal/webhook/

# The running service against a bare process, each its own process, driven
# by hookwise loadtest (minutes; PostgreSQL too when HOOKWISE_TEST_DATABASE_URL is set).
bench-serve:
	go test -run '^$$' -bench BenchmarkServe -benchtime 1x -timeout 30m ./cmd/hookwise/

demo:
	go run ./cmd/hookwise demo
