// Package model runs the forward pass of decoder-only transformer models
// stored in GGUF files: the llama architecture (Llama, Mistral and other
// files that use it, with grouped-query attention), qwen2, and the GLM
// family (chatglm for ChatGLM3/GLM-4-9B, glm4 for GLM-4-0414).
//
// # Files
//
// Load reads the hyperparameters from the llama.cpp metadata keys
// ({arch}.embedding_length, .block_count, .attention.head_count,
// .attention.head_count_kv, .attention.key_length, .feed_forward_length,
// .context_length, .rope.freq_base, .rope.dimension_count,
// .rope.scaling.type/.factor (linear only),
// .attention.layer_norm_rms_epsilon) and the weights by llama.cpp's tensor
// names (token_embd, output_norm, output — tied to token_embd when absent —
// and per block blk.N.attn_norm, attn_q/attn_k/attn_v or the fused
// attn_qkv with optional biases, attn_output, ffn_norm, ffn_gate/ffn_up/
// ffn_down or a fused ffn_up holding gate then up, and GLM-4's
// post_attention_norm and post_ffw_norm). Matrix weights may be of any type
// quant supports; they are used in place (F32 weights as float32 views,
// others through quant's kernels), so the gguf.File must stay open while
// the Model is used.
//
// # Rotary embeddings
//
// GGUF files store q/k weights so that llama, chatglm and glm4 rotate
// adjacent pairs (x[2i], x[2i+1]) — the HF-to-GGUF converter permutes
// Llama's q/k rows to make this so, and GLM checkpoints are trained that
// way — while qwen2 rotates the halves (x[i], x[i+n/2]) ("NeoX" style). Only
// the first .rope.dimension_count elements of each head rotate; for the GLM
// family that is half the head. A rope_freqs.weight tensor (Llama 3.1 and
// later) divides the rotary frequencies element-wise.
//
// # Batching
//
// Forward advances several sequences at once, each at its own position with
// its own Cache. All new tokens of the step form the rows of one activation
// matrix, so every weight matrix is streamed from memory once per step and
// multiplied with all rows while it is in cache; attention then runs
// against each row's sequence cache: per row for a sequence that brings a
// few tokens (decoding), and in tiles of up to 16 consecutive rows for a
// prompt, whose queries meet blocks of keys as float32 matrix products
// (quant.MatMulF32) so that each key and value row is decoded once per
// tile (attention.go). Matrix products and attention items are spread
// across a pool of Options.Threads goroutines that lives as long as the
// Model (Close stops it).
package model
