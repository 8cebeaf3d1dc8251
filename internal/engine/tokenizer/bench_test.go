package tokenizer

import "testing"

func benchmarkEncode(b *testing.B, tk *Tokenizer, text string) {
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(tk.Encode(text, EncodeOptions{AddSpecial: true}))
	}
	b.ReportMetric(float64(len(text))/float64(n), "bytes/token")
}

func BenchmarkEncodeSPM(b *testing.B) {
	b.Run("synthetic", func(b *testing.B) { benchmarkEncode(b, synthSPM(b, true), bigEnglish) })
}

func BenchmarkEncodeBPE(b *testing.B) {
	for _, pre := range []string{"gpt2", "llama3", "qwen2"} {
		b.Run(pre, func(b *testing.B) { benchmarkEncode(b, trainedBPE(b, pre), bigEnglish) })
	}
}

func BenchmarkDecode(b *testing.B) {
	tk := trainedBPE(b, "llama3")
	ids := tk.Encode(bigEnglish, EncodeOptions{})
	b.SetBytes(int64(len(bigEnglish)))
	b.ReportAllocs()
	for b.Loop() {
		_ = tk.Decode(ids)
	}
}
