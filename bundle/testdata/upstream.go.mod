// A small stand-in for k8s.io/kubernetes' go.mod.
module example.com/big

go 1.26.0

godebug default=go1.26

require (
	example.com/dep v1.2.3
	example.com/big/staging/api v0.0.0
)

replace (
	example.com/big/staging/api => ./staging/src/example.com/api
	example.com/forked v1.0.0 => example.com/fork v1.0.1
)

// replace example.com/commented => ../commented
