def test_gpt2_tokenizer_from_the_registry_matches_known_ids():
    from discern.data.tokenizer import gpt2_tokenizer

    tok = gpt2_tokenizer()
    assert len(tok) == 50257 and tok.eos_token_id == 50256
    # ids of OpenAI's GPT-2 encoder for "Hello world"
    assert tok("Hello world")["input_ids"] == [15496, 995]
    assert tok.decode(tok(" unbelievably, it works.")["input_ids"]) == " unbelievably, it works."
