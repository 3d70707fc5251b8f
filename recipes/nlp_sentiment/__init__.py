"""nlp-sentiment: a table of texts and labels -> a transformers text classifier.

The default model trains fully offline: a WordPiece tokenizer is trained on the training texts and
a small BERT (2 layers x 128) learns from scratch. `model.name=rnn` swaps in a bidirectional
LSTM/GRU over the same tokenizer; any other name is a Hugging Face checkpoint (a local folder, or a
hub name already in the cache) fine-tuned with its own tokenizer.

Data: one table (CSV/TSV/JSONL/Parquet, optional `split` column), split tables (train.csv, dev.tsv,
test.jsonl...) or split folders (train/, valid/, test/ each holding a table); a missing val or test
split is carved out of train, stratified by label. The model is scored beside the majority class and
TF-IDF (word and character n-grams) + logistic regression. The tokenizer and both baselines are kept
in the run's state as JSON and the model's architecture as its transformers config, so evaluate and
predict rebuild everything from the run alone. After training the model and tokenizer are also saved
with `save_pretrained` into `RUN/model/`, loadable by plain transformers.

Files: recipe.py (the hooks), data.py (tables, splits, fitted state, datasets, predict inputs),
model.py (the classifiers, native format), baselines.py.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "nlp-sentiment",
    "task": "text classification (sentiment)",
    "description": (
        "Classify texts (CSV/TSV/JSONL text,label) with a small BERT, an RNN or any HF checkpoint."
    ),
    "default_model": "ngram",
    "sample_data": "sample_data/nlp_sentiment/reviews.csv",
    "monitor": "accuracy",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, NlpSentiment="recipe", recipe_config="config")

__all__ = ["recipe_config", "NlpSentiment"]
