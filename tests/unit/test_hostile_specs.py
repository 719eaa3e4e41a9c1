"""Hostile spec files (issue 25, case 8): every one refused by ``load_spec`` with a SpecError naming the
file and what is wrong, before anything large is built."""

from __future__ import annotations

import resource

import pytest
from mlops_pack.core.spec import SpecError, load_spec

from tests.support.specs import write_spec

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def spec_with(tmp_path, text: str):
    path = tmp_path / "listings.yaml"
    path.write_text(text)
    return path


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = write_spec(tmp_path, "http://127.0.0.1:1")
    params = "  params: {max_iter: 150, learning_rate: 0.1, random_state: 0}\n"
    bomb = "  params:\n" + "".join("    " + line + "\n" for line in LAUGHS.splitlines())
    path.write_text(path.read_text().replace(params, bomb))  # where the issue found it: model.params
    assert len(LAUGHS) < 1000  # 9**9 values once expanded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SpecError, match=r"listings.yaml: cannot read pipeline spec: .*expand to more than 100,000"):
        load_spec(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing was built


def test_a_few_plain_aliases_still_read(tmp_path):
    path = write_spec(tmp_path, "http://127.0.0.1:1")
    text = path.read_text().replace("  params: {max_iter: 150, learning_rate: 0.1, random_state: 0}",
                                    "  params: &params {max_iter: 150, learning_rate: 0.1, random_state: 0}")
    assert text != path.read_text()
    path.write_text(text)
    assert load_spec(path).model.params["max_iter"] == 150


def test_deep_nesting_is_refused_with_the_depth_not_a_recursion_error(tmp_path):
    path = spec_with(tmp_path, "name: listings\nmodel:\n  params: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SpecError, match=r"listings.yaml: cannot read pipeline spec: nested deeper than 50 levels"):
        load_spec(path)


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path):
    path = write_spec(tmp_path, "http://127.0.0.1:1")
    text = path.read_text().replace("  holdout_fraction: 0.2\n", "  holdout_fraction: 0.2\n  holdout_fraction: 0.5\n")
    path.write_text(text)
    with pytest.raises(SpecError, match=r"key 'holdout_fraction' is written twice in one mapping \(lines \d+ and \d+\)"):
        load_spec(path)


def test_an_oversized_or_undecodable_file_is_refused_naming_it(tmp_path):
    path = spec_with(tmp_path, "name: listings\n" + "# padding\n" * 200_000)
    with pytest.raises(SpecError, match="listings.yaml: cannot read pipeline spec: the file is over 1,000,000 bytes"):
        load_spec(path)
    path.write_bytes(b"name: listings\ndescription: \xff\xfe\n")
    with pytest.raises(SpecError, match="listings.yaml: cannot read pipeline spec: 'utf-8' codec"):
        load_spec(path)


@pytest.mark.parametrize(("field", "ref"), [
    ("estimator", "subprocess.Popen"), ("estimator", "os.system"), ("pipeline", "subprocess:run"),
    ("pipeline", "sklearnx.evil:build"),  # a prefix of the name is not the package
])
def test_model_code_outside_the_allow_list_is_refused_naming_file_field_and_list(tmp_path, field, ref):
    # issue 25, case 8: `model.estimator: subprocess.Popen` ran a command at training time
    path = write_spec(tmp_path, "http://127.0.0.1:1", **{
        "  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n": f"  {field}: {ref}\n",
        "  params: {max_iter: 150, learning_rate: 0.1, random_state: 0}\n": "  params: {}\n"})
    with pytest.raises(SpecError) as refused:
        load_spec(path, ["xgboost", "acme_models."])
    message = str(refused.value)
    assert message.startswith(f"{path}: invalid pipeline spec:\n  model.{field}: {ref!r}: module ")
    assert "is not allowed for model code; allowed: sklearn.*, xgboost.*, acme_models.*" in message
    assert "[mlops] allowed_model_modules" in message and str(tmp_path) in message


def test_configured_packages_and_the_projects_own_modules_are_allowed(tmp_path):
    path = write_spec(tmp_path / "include" / "pipelines", "http://127.0.0.1:1")
    default = load_spec(path)  # scikit-learn: always
    assert default.model.estimator.startswith("sklearn.")
    own = tmp_path / "include" / "acme_models"
    own.mkdir()
    (own / "__init__.py").write_text("")
    (own / "price.py").write_text("def build(numeric, categorical):\n    raise SystemExit('never imported')\n")
    text = path.read_text().replace("  estimator: sklearn.ensemble.HistGradientBoostingRegressor\n",
                                    "  pipeline: acme_models.price:build\n")
    path.write_text(text)
    assert load_spec(path).model.pipeline == "acme_models.price:build"  # include/ code: the project's own
    path.write_text(text.replace("acme_models.price:build", "tests.user_code.price_models:price_pipeline"))
    with pytest.raises(SpecError, match="model.pipeline: 'tests.user_code.price_models:price_pipeline': module"):
        load_spec(path)
    assert load_spec(path, ["tests.user_code"]).model.pipeline.startswith("tests.user_code.")  # configured
    (tmp_path / "include" / "subprocess.py").write_text("")  # a module shadowing an installed one stays refused
    path.write_text(text.replace("  pipeline: acme_models.price:build\n", "  estimator: subprocess.Popen\n"))
    with pytest.raises(SpecError, match=r"model.estimator: 'subprocess.Popen': module 'subprocess' is not allowed"):
        load_spec(path)
