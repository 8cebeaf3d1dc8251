package api_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

func ExampleClient_Chat() {
	// A mock upstream stands in for a real server; its text is deterministic.
	upstream := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 6}))
	defer upstream.Close()

	c := api.NewClient(upstream.URL, nil)
	resp, err := c.Chat(context.Background(), &api.ChatCompletionRequest{
		Model: "mock-model",
		Messages: []api.Message{
			{Role: api.RoleSystem, Content: api.Text("You are brief.")},
			{Role: api.RoleUser, Content: api.Text("Tell me a story.")},
		},
		MaxTokens: 4,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Choices[0].Message.Content)
	fmt.Println(resp.Choices[0].FinishReason, resp.Usage.PromptTokens, resp.Usage.CompletionTokens)
	// Output:
	// blue sky ball high
	// length 7 4
}

func ExampleClient_ChatStream() {
	upstream := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 3}))
	defer upstream.Close()

	c := api.NewClient(upstream.URL, nil)
	req := &api.ChatCompletionRequest{
		Model:         "mock-model",
		Messages:      []api.Message{{Role: api.RoleUser, Content: api.Text("Hello")}},
		StreamOptions: &api.StreamOptions{IncludeUsage: true},
	}
	err := c.ChatStream(context.Background(), req, func(chunk *api.ChatCompletionChunk) error {
		for _, choice := range chunk.Choices {
			fmt.Printf("%q", choice.Delta.Content)
			if choice.FinishReason != "" {
				fmt.Printf(" (%s)", choice.FinishReason)
			}
			fmt.Println()
		}
		if chunk.Usage != nil {
			fmt.Println("total tokens:", chunk.Usage.TotalTokens)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// "was"
	// " small"
	// " day" (stop)
	// total tokens: 4
}

func ExampleClient_Embeddings() {
	upstream := httptest.NewServer(mockllm.New(mockllm.Options{EmbeddingDim: 16}))
	defer upstream.Close()

	c := api.NewClient(upstream.URL, nil)
	resp, err := c.Embeddings(context.Background(), &api.EmbeddingRequest{
		Model:          "mock-model",
		Input:          api.TextInput("first text", "second text"),
		EncodingFormat: "base64", // decoded into Vector all the same
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range resp.Data {
		var norm float64
		for _, x := range e.Embedding {
			norm += float64(x) * float64(x)
		}
		fmt.Printf("input %d: %d dimensions, norm %.3f\n", e.Index, len(e.Embedding), math.Sqrt(norm))
	}
	// Output:
	// input 0: 16 dimensions, norm 1.000
	// input 1: 16 dimensions, norm 1.000
}

func ExampleStatusError() {
	upstream := httptest.NewServer(mockllm.New(mockllm.Options{APIKey: "sk-right"}))
	defer upstream.Close()

	c := api.NewClient(upstream.URL, nil).WithAPIKey("sk-wrong")
	_, err := c.Models(context.Background())
	var se *api.StatusError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.Code)
		fmt.Println(se)
	}
	// Output:
	// 401 invalid_api_key
	// api: 401 Unauthorized (invalid_api_key): Incorrect API key provided.
}
