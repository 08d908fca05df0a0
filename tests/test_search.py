"""The search component (_search): NSGA2Search's settings, given once, run on
fold data and objectives and give a SearchResult whose state_dict continues
the search exactly where it stood."""

import io
import json

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from evoprune_sklearn._engines import TrainingConfig
from evoprune_sklearn._search import NSGA2Search, SearchControl, SearchResult, genome_key
from evoprune_sklearn.objectives import Accuracy, Complexity, ObjectiveContext


def _data(n_features=20):
    X, y = make_classification(n_samples=150, n_features=n_features,
                               n_informative=min(5, n_features), n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    X = X.astype(np.float32)
    config = TrainingConfig("features", n_features, (), 3, max_iter=20,
                            init_seed=1, shuffle_seed=2)
    return ObjectiveContext(X[:100], y[:100], X[100:], y[100:], 3, config=config)


@pytest.fixture(scope="module")
def data():
    return _data()


def objectives():
    return [Accuracy(), Complexity()]


def _front(result):
    """Genomes and objective values of a result's front, in order."""
    return [(m.genome.tobytes(), tuple(sorted(m.objectives.items()))) for m in result.front]


def _history(result):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in result.history]


@pytest.fixture(scope="module")
def full(data):
    """One uninterrupted search of 6 generations."""
    return NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(data, objectives())


# ------------------------------------------------------------------ result
def test_result_holds_the_front_history_and_counters(full):
    assert full.n_evaluations == 36 and full.n_generations == 6
    assert full.stop_reason == "n_evaluations"
    assert [r["generation"] for r in full.history] == list(range(6))
    assert [r["n_evaluations"] for r in full.history] == [6, 12, 18, 24, 30, 36]
    # each distinct genome trained once; every evaluated genome cached
    assert full.n_trained == len(full.evaluated) <= full.n_evaluations
    assert full.history[-1]["n_trained"] == full.n_trained
    # the front: non-dominated, every member's values are its cached ones
    F = np.array([[-m.objectives["accuracy"], m.objectives["complexity"]]
                  for m in full.front])
    for i in range(len(F)):
        assert not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(len(F)))
    for m in full.front:
        np.testing.assert_array_equal(
            full.evaluated[genome_key(m.genome)],
            [m.objectives["accuracy"], m.objectives["complexity"]])
        assert m.objectives["complexity"] == pytest.approx(m.genome.mean())
    assert full.population["X"].shape == (6, 20) and full.population["F"].shape == (6, 2)


def test_same_seed_same_front_other_seed_other_front(data, full):
    again = NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(data, objectives())
    assert _front(again) == _front(full) and _history(again) == _history(full)
    other = NSGA2Search(pop_size=6, n_evaluations=36, seed=4).run(data, objectives())
    assert _front(other) != _front(full)


def test_the_last_generation_is_cut_to_the_budget(data):
    result = NSGA2Search(pop_size=6, n_evaluations=15).run(data, objectives())
    assert [r["n_evaluations"] for r in result.history] == [6, 12, 15]


# -------------------------------------------------------------- state dict
def _through_a_file(state):
    """``state`` as a checkpoint stores it: tensors, and metadata as JSON."""
    buffer = io.BytesIO()
    torch.save({**state, "meta": json.dumps(state["meta"])}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    return {**loaded, "meta": json.loads(loaded["meta"])}


def test_state_dict_round_trip_continues_like_an_uninterrupted_search(data, full):
    part = NSGA2Search(pop_size=6, n_evaluations=18, seed=3).run(data, objectives())
    restored = SearchResult()
    restored.load_state_dict(_through_a_file(part.state_dict()))
    assert _front(restored) == _front(part) and restored.history == part.history
    assert restored.evaluated.keys() == part.evaluated.keys()
    for key in ("X", "F", "rank", "crowding"):
        np.testing.assert_array_equal(restored.population[key], part.population[key])
    continued = NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(
        data, objectives(), start=restored)
    assert _front(continued) == _front(full)
    assert _history(continued) == _history(full)
    assert continued.n_trained == full.n_trained


def test_a_search_killed_mid_way_resumes_from_its_last_generation(data, full):
    snapshots = []
    NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(
        data, objectives(), on_generation=snapshots.append)
    assert [s.n_generations for s in snapshots] == [1, 2, 3, 4, 5, 6]
    # the snapshot says whether the search ends there
    assert [s.stop_reason for s in snapshots] == [None] * 5 + ["n_evaluations"]
    killed = SearchResult()
    killed.load_state_dict(_through_a_file(snapshots[2].state_dict()))
    resumed = NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(
        data, objectives(), start=killed)
    assert _front(resumed) == _front(full) and _history(resumed) == _history(full)


def test_continuing_a_finished_search_trains_nothing(data, full):
    same = NSGA2Search(pop_size=6, n_evaluations=36, seed=3).run(
        data, objectives(), start=full)
    assert same.stop_reason == "n_evaluations" and same.n_trained == full.n_trained
    assert same.n_generations == 6 and _front(same) == _front(full)


def test_the_seed_of_a_continued_search_is_its_stored_state(data, full):
    """A continued search draws from the stored generator, not its own seed."""
    part = NSGA2Search(pop_size=6, n_evaluations=18, seed=3).run(data, objectives())
    continued = NSGA2Search(pop_size=6, n_evaluations=36, seed=99).run(
        data, objectives(), start=part)
    assert _front(continued) == _front(full)


def test_start_of_other_objectives_is_refused(data, full):
    with pytest.raises(ValueError, match="objectives"):
        NSGA2Search(pop_size=6, n_evaluations=42).run(data, [Accuracy()], start=full)


# ------------------------------------------------------------ stop reasons
def test_time_budget_stops_after_the_first_generation(data):
    control = SearchControl(max_time=1e-9)
    result = NSGA2Search(pop_size=6, n_evaluations=36, control=control).run(
        data, objectives())
    assert result.stop_reason == "max_time" and result.n_generations == 1


def test_a_callback_stops_the_search_by_its_name(data):
    control = SearchControl([("enough", lambda record, front: record["generation"] == 1)])
    result = NSGA2Search(pop_size=6, n_evaluations=36, control=control).run(
        data, objectives())
    assert result.stop_reason == "enough" and result.n_generations == 2


def test_no_improvement_stops_the_search(data):
    control = SearchControl(n_iter_no_change=1, tol=1.0)  # nothing improves by 1
    result = NSGA2Search(pop_size=6, n_evaluations=60, control=control).run(
        data, objectives())
    assert result.stop_reason == "n_iter_no_change" and result.n_generations == 2


def test_a_search_out_of_new_genomes_stops():
    """Two genes: three genomes can be kept, then NSGA-II breeds none new."""
    result = NSGA2Search(pop_size=3, n_evaluations=30).run(_data(2), objectives())
    assert result.stop_reason == "no_new_genomes"
    assert result.n_evaluations == result.n_trained == 3


# ----------------------------------------------------------------- settings
@pytest.mark.parametrize("settings, match", [
    (dict(pop_size=0), "pop_size"),
    (dict(pop_size=2.5), "pop_size"),
    (dict(n_evaluations=4), "n_evaluations=4 is smaller than pop_size=6"),
    (dict(crossover_rate=1.5), "crossover_rate"),
    (dict(mutation_rate=-0.1), "mutation_rate"),
])
def test_bad_settings_are_refused_before_any_training(data, settings, match):
    search = NSGA2Search(**{"pop_size": 6, "n_evaluations": 12, **settings})
    with pytest.raises(ValueError, match=match):
        search.run(data, objectives())


def test_data_without_a_training_config_is_refused(data):
    import dataclasses

    with pytest.raises(ValueError, match="config"):
        NSGA2Search(pop_size=6, n_evaluations=12).run(
            dataclasses.replace(data, config=None), objectives())


# ------------------------------------------------------------ encapsulation
@pytest.mark.parametrize("module", ["_search.py", "_checkpoint.py"])
def test_no_private_attribute_of_another_object_is_read(module):
    """The search and the checkpoint use public interfaces only: of each
    other (state_dict, not the evaluator's cache) and of pymoo (ask/tell,
    not ``_initialize``)."""
    import ast
    import pathlib

    import evoprune_sklearn

    source = pathlib.Path(evoprune_sklearn.__file__).parent / module
    reads = [
        f"{ast.unparse(node.value)}.{node.attr} (line {node.lineno})"
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert reads == []


def test_a_continued_nsga2_stands_exactly_where_it_stopped(data):
    """The survivors come back in their order with the ranks and crowding
    distances they had among their rivals, and the generator in its state:
    what the next tournament reads. (pymoo, ranking the survivors again
    alone, gives some of them other crowding distances or another order:
    checked here, so that the test covers that case.)"""
    from pymoo.core.population import Population
    from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

    from evoprune_sklearn._search import PruningProblem, _nsga2

    results, reranked_differs = [], []
    search = NSGA2Search(pop_size=10, n_evaluations=60, seed=2)
    search.run(data, objectives(), on_generation=results.append)
    problem = PruningProblem(20, 2)
    for start in results[:-1]:
        algorithm = _nsga2(search, problem, start)
        for key in ("X", "F", "rank", "crowding"):
            np.testing.assert_array_equal(algorithm.pop.get(key), start.population[key])
        assert algorithm.random_state.bit_generator.state == start.random_state
        assert algorithm.n_iter == start.n_generations + 1
        alone = RankAndCrowding().do(problem, Population.new(
            X=start.population["X"], F=start.population["F"]), n_survive=10)
        reranked_differs.append(not (
            np.array_equal(alone.get("X"), start.population["X"])
            and np.array_equal(alone.get("crowding"), start.population["crowding"])))
    assert any(reranked_differs)
