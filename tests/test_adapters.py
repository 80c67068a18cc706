"""Parameter-efficient fine-tuning (course_lib.adapters), the pieces of notebook 12 and its checks."""
import pytest
import torch
from peft import PeftModel
from transformers import BertConfig

from course_lib import adapters, data, finetune, korean, models
from course_lib.errors import ConfigError
from course_lib.exercises import CheckFailed
from course_lib.exercises import handson as checks


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_minilm()[1]


def small_classifier(vocab_size=100, num_labels=2):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=num_labels)
    return models.MeanPoolingBertForSequenceClassification(config)


def trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_each_method_trains_what_it_says():
    head = {"classifier.weight", "classifier.bias"}
    assert trainable_names(adapters.prepare(small_classifier(), "probe")) == head
    bitfit = trainable_names(adapters.prepare(small_classifier(), "bitfit"))
    assert head < bitfit and all(name.endswith(".bias") for name in bitfit - head)
    assert len(trainable_names(adapters.prepare(small_classifier(), "full"))) == len(list(small_classifier().parameters()))
    lora = trainable_names(adapters.prepare(small_classifier(), "lora", r=2, alpha=4))
    assert all("lora_" in name or ".classifier." in name for name in lora)
    assert {name.split(".")[-4] for name in lora if "lora_" in name} == {"query", "value"}
    ia3 = trainable_names(adapters.prepare(small_classifier(), "ia3"))
    assert {name.split(".")[-3] for name in ia3 if "ia3_" in name} == {"key", "value", "dense"}
    assert not any("attention.output.dense" in name for name in ia3)  # only the feed-forward output layer


def test_lora_adds_r_times_inputs_plus_outputs_per_matrix():
    model = adapters.lora(small_classifier(), r=4, alpha=8)
    lora = sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "lora_" in name)
    assert lora == 2 * 2 * 4 * (16 + 16)  # 2 layers x (query, value) x r x (in + out)


def test_training_state_counts_weights_once_and_trained_ones_four_times():
    model = adapters.prepare(small_classifier(), "probe")
    total = sum(p.numel() for p in model.parameters())
    assert adapters.training_state_bytes(model) == 4 * (total - 34) + 16 * 34  # the head: 16 x 2 + 2


def test_wrong_methods_and_options_are_refused():
    with pytest.raises(ConfigError, match="method must be one of"):
        adapters.prepare(small_classifier(), "prefix")
    with pytest.raises(ConfigError, match="only LoRA takes options"):
        adapters.prepare(small_classifier(), "bitfit", r=4)
    with pytest.raises(ConfigError, match="rank r must be at least 1"):
        adapters.lora(small_classifier(), r=0)
    with pytest.raises(ConfigError, match="unknown arm"):
        adapters.finetune_arm("LoRA r=32", None, None, 1e-3)


def test_an_adapter_reloads_and_merges_to_the_same_logits(tmp_path):
    model = adapters.lora(small_classifier(), r=2, alpha=4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()  # as if trained: B starts at zero
    model.eval()
    batch = {"input_ids": torch.tensor([[1, 5, 7, 2, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 1, 0]])}
    want = model(**batch).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    reloaded = PeftModel.from_pretrained(small_classifier(), tmp_path).eval()
    assert torch.allclose(reloaded(**batch).logits, want)
    merged = reloaded.merge_and_unload()
    assert isinstance(merged, models.MeanPoolingBertForSequenceClassification)
    assert torch.allclose(merged(**batch).logits, want, atol=1e-5)
    assert not any("lora" in name for name, _ in merged.named_modules())


def test_a_saved_fine_tuned_model_answers_through_pipeline_with_its_label_names(tmp_path, tokenizer):
    model = small_classifier(vocab_size=len(tokenizer))
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    classify = models.text_classification_pipeline(tmp_path)
    loaded = classify.model
    assert isinstance(loaded, models.MeanPoolingBertForSequenceClassification)
    answer = classify("a fine film")[0]
    assert not loaded.training
    with torch.no_grad():
        probabilities = loaded(**tokenizer("a fine film", return_tensors="pt")).logits.softmax(-1)[0]
    assert answer["label"] == ["negative", "positive"][int(probabilities.argmax())]
    assert answer["score"] == pytest.approx(float(probabilities.max()), abs=1e-5)


def test_token_labels_label_each_word_once(tokenizer):
    encoding = tokenizer(["unbelievably", "good"], is_split_into_words=True)
    labels = finetune.token_labels(encoding.word_ids(), [3, 4])
    pieces = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    assert len(pieces) > 4  # "unbelievably" is more than one piece, so the rule is exercised
    assert labels[0] == labels[-1] == -100
    assert [label for label in labels if label != -100] == [3, 4]
    assert labels[1] == 3


def test_next_sentence_pairs_are_half_followers_and_refuse_too_few():
    documents = [" ".join(f"Sentence {i} of document {d} here." for i in range(6)) for d in range(3)]
    firsts, seconds, labels = data.next_sentence_pairs(documents, 10, seed=0)
    assert len(firsts) == len(seconds) == 10 and sum(labels) == 5
    for a, b, label in zip(firsts, seconds, labels):
        same_document = a.split("document ")[1][0] == b.split("document ")[1][0]
        assert same_document == bool(label)
        if label:
            assert int(b.split()[1]) == int(a.split()[1]) + 1
    with pytest.raises(ConfigError, match="pairs of neighbouring sentences"):
        data.next_sentence_pairs(documents, 100)


def test_word_classes_give_one_class_per_word():
    words, classes = korean.word_classes("아이돌하고만 계속 찍어서 좋다")
    assert words == ["아이돌하고만", "계속", "찍어서", "좋다"]
    assert classes == ["noun", "adverb", "verb", "adjective"]
    assert set(classes) <= set(korean.WORD_CLASSES)


def test_the_rate_chosen_is_the_best_on_the_selection_split_and_the_smaller_on_a_tie():
    rows = [{"phase": "select", "arm": "a", "lr": lr, "dev": dev} for lr, dev in ((1e-3, 0.7), (3e-3, 0.8), (1e-2, 0.8))]
    rows += [{"phase": "score", "arm": "a", "lr": 1e-2, "dev": 0.99}]  # scores never choose
    assert adapters.chosen_rates(rows) == {"a": 3e-3}


def test_summary_reads_only_the_chosen_rate():
    rows = [{"phase": "select", "arm": "a", "lr": 1e-3, "dev": 0.9}, {"phase": "select", "arm": "a", "lr": 1e-2, "dev": 0.5}]
    score = dict(phase="score", arm="a", budget=500, trainable=10, state_bytes=100, seconds_per_step=1.0)
    rows += [{**score, "lr": 1e-3, "seed": s, "dev": d, "test": d} for s, d in ((0, 0.7), (1, 0.8))]
    rows += [{**score, "lr": 1e-2, "seed": 0, "dev": 0.1, "test": 0.1}]
    result = adapters.summary(rows)[("a", 500)]
    assert result["n"] == 2 and result["dev"][0] == pytest.approx(75.0) and result["lr"] == 1e-3


def test_the_checks_name_what_is_wrong(tokenizer):
    def all_pieces(word_ids, word_labels):
        return [-100 if w is None else word_labels[w] for w in word_ids]
    with pytest.raises(CheckFailed, match="later piece"):
        checks.check_token_labels(all_pieces, tokenizer)
    checks.check_token_labels(finetune.token_labels, tokenizer)

    def with_frozen(model, lr_lora, lr_head):
        params = list(model.parameters())
        return [{"params": params, "lr": lr_lora}]
    with pytest.raises(CheckFailed, match="frozen"):
        checks.check_lora_groups(with_frozen)

    def rank_one(model, r, modules):
        return sum(layer.in_features + layer.out_features for name, layer in model.named_modules()
                   if isinstance(layer, torch.nn.Linear) and name.split(".")[-1] in modules)
    with pytest.raises(CheckFailed, match="r = 1"):
        checks.check_lora_count(rank_one)
