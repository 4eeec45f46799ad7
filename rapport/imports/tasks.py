"""Background tasks for imports: thin wrappers that take a job id and do nothing if the job is
gone or no longer waiting for them."""

from django_tasks import task

from rapport.imports.actions import job_analyse, job_execute


@task()
def analyse_import(job_id: int) -> None:
    job_analyse(job_id=job_id)


@task()
def run_import(job_id: int) -> None:
    job_execute(job_id=job_id)
